"""`mxcd s3 check` against a real Ceph RGW: every check OK on a well set-up bucket, and the
FAIL or WARN line each set-up mistake should produce (wrong keys, a missing bucket, a
read-only user, versioning, a public bucket, an unreachable or untrusted endpoint, a skewed
clock, a refused payload signature). Every run is made twice, as lines and as JSON, and both
must agree; the scratch object must be gone from the bucket afterwards."""

import json
import re
import subprocess
import time

import pytest

from harness import DATABASE, STORE, asan_binary, free_port, server_env
from s3_fault_proxy import Rule, S3FaultProxy
from test_auth_tls import certificates  # noqa: F401 (fixture: a CA, a certificate for 127.0.0.1)
from test_s3_store import bucket, proxy, s3  # noqa: F401 (fixtures)

# These tests configure their stores themselves and never touch the metadata database: one
# run is enough.
pytestmark = pytest.mark.skipif(STORE != "local" or DATABASE != "sqlite",
                                reason="runs once, with the default store and database")

ALL_CHECKS = ["endpoint", "credentials", "region", "bucket", "put-object", "get-object",
              "head-object", "list-objects", "delete-object", "create-multipart-upload",
              "upload-part", "abort-multipart-upload", "anonymous-read", "anonymous-list",
              "versioning", "clock", "payload-signing"]
LINE = re.compile(r"^  (OK|WARN|FAIL) +(\S+) +(.+)$")


class Report:
    """One store's findings, from the text and the JSON output of the same configuration."""

    def __init__(self, returncode, lines, document):
        self.returncode = returncode
        self.lines = lines          # [(check, status, message)] from the text output
        self.document = document    # the JSON output

    @property
    def statuses(self):
        return {check: status for check, status, _ in self.lines}

    def checks(self):
        return [check for check, _, _ in self.lines]

    def message(self, check):
        return next(message for c, _, message in self.lines if c == check)


def run_check(tmp_path, stores, *args):
    config = {"server_name": "test.local", "auth": {"homeserver_url": "http://127.0.0.1:8008"},
              "storage": {"path": str(tmp_path / "media")},
              "database": {"sqlite": {"path": str(tmp_path / "mxcd.sqlite3")}},
              "stores": stores}
    path = tmp_path / "mxcd.yaml"
    path.write_text(json.dumps(config))
    result = subprocess.run([str(asan_binary()), "s3", "check", "--config", str(path), *args],
                            capture_output=True, text=True, timeout=120, env=server_env())
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in result.stderr, result.stderr
    return result


def check(tmp_path, store, *args, before_each_run=lambda: None):
    """Runs the check on one store as text and as JSON; both must give the same statuses and
    exit code. Returns the Report."""
    before_each_run()
    text = run_check(tmp_path, [store], *args)
    before_each_run()
    as_json = run_check(tmp_path, [store], "--json", *args)
    assert text.returncode == as_json.returncode, (text.stdout, as_json.stdout)
    lines = []
    for line in text.stdout.splitlines():
        if match := LINE.match(line):
            lines.append((match[2], match[1].lower(), match[3]))
    document = json.loads(as_json.stdout)
    assert len(document) == 1 and document[0]["store"] == store["name"], document
    assert [(c["check"], c["status"]) for c in document[0]["checks"]] == \
        [(c, s) for c, s, _ in lines], (text.stdout, as_json.stdout)
    assert all(c["message"] for c in document[0]["checks"]), document
    # The lines keep the order of the checks.
    assert lines and [c for c, _, _ in lines] == [c for c in ALL_CHECKS if c in dict(
        (c, s) for c, s, _ in lines)], text.stdout
    return Report(text.returncode, lines, document)


def assert_scratch_gone(s3, bucket, expected_keys=()):
    assert s3.keys(bucket) == sorted(expected_keys)
    assert s3.multipart_uploads(bucket) == []


# --- a bucket set up right ---

@pytest.mark.parametrize("signing", ["signed", "unsigned"])
def test_all_ok_with_a_full_permission_user(tmp_path, s3, bucket, signing):
    s3.client().put_object(Bucket=bucket, Key="mxcd/aa/bb/existing", Body=b"kept")
    report = check(tmp_path, s3.store_config(bucket, prefix="mxcd", payload_signing=signing))
    assert report.returncode == 0, report.lines
    assert report.checks() == ALL_CHECKS
    assert set(report.statuses.values()) == {"ok"}, report.lines
    assert f"payload_signing: {signing}" in report.message("payload-signing")
    assert report.document[0]["provider"] is None
    # The scratch object was under the prefix and is gone; what was there stays.
    assert_scratch_gone(s3, bucket, ["mxcd/aa/bb/existing"])
    assert "scratch object mxcd/mxcd-s3-check-" in report.message("put-object")


def test_only_the_named_store_is_checked(tmp_path, s3, bucket):
    good = s3.store_config(bucket)
    missing = dict(s3.store_config("mxcd-no-such-bucket"), name="other")
    result = run_check(tmp_path, [good, missing], "--store", "bucket", "--json")
    assert result.returncode == 0, result.stdout
    assert [store["store"] for store in json.loads(result.stdout)] == ["bucket"]

    result = run_check(tmp_path, [good, missing], "--json")
    assert result.returncode == 1
    assert [store["store"] for store in json.loads(result.stdout)] == ["bucket", "other"]

    for name in ["nope", "local"]:
        result = run_check(tmp_path, [good], "--store", name)
        assert result.returncode == 2, result.stdout
        assert name in result.stderr


def test_no_s3_store_is_a_config_error(tmp_path):
    result = run_check(tmp_path, [])
    assert result.returncode == 2
    assert "no S3 store" in result.stderr


def test_an_invalid_config_exits_2(tmp_path, s3, bucket):
    result = run_check(tmp_path, [s3.store_config(bucket, surprise=True)])
    assert result.returncode == 2
    assert "config error" in result.stderr


# --- set-up mistakes ---

def test_wrong_secret_fails_on_credentials(tmp_path, s3, bucket):
    report = check(tmp_path, s3.store_config(bucket, secret_access_key="not-the-secret"))
    assert report.returncode == 1
    assert report.statuses["endpoint"] == "ok"
    assert report.statuses["credentials"] == "fail"
    assert "SignatureDoesNotMatch" in report.message("credentials")
    assert "secret_access_key" in report.message("credentials")
    # Nothing that needs valid keys was tried.
    assert "put-object" not in report.statuses
    assert_scratch_gone(s3, bucket)


def test_unknown_access_key_fails_on_credentials(tmp_path, s3, bucket):
    report = check(tmp_path, s3.store_config(bucket, access_key_id="NOSUCHKEY"))
    assert report.returncode == 1
    assert report.statuses["credentials"] == "fail"
    assert "InvalidAccessKeyId" in report.message("credentials")
    assert "access_key_id" in report.message("credentials")


def test_missing_bucket_fails(tmp_path, s3):
    report = check(tmp_path, s3.store_config("mxcd-never-created"))
    assert report.returncode == 1
    assert report.statuses["credentials"] == "ok"
    assert report.statuses["bucket"] == "fail"
    assert "does not exist" in report.message("bucket")
    assert "put-object" not in report.statuses
    names = [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
    assert "mxcd-never-created" not in names


def test_read_only_user_fails_on_each_write_permission(tmp_path, s3, bucket):
    access_key, secret_key = s3.user("reader")
    s3.allow_read_only(bucket, "reader")
    report = check(tmp_path, s3.store_config(bucket, access_key_id=access_key,
                                             secret_access_key=secret_key))
    assert report.returncode == 1
    statuses = report.statuses
    for allowed in ["endpoint", "credentials", "bucket", "get-object", "head-object",
                    "list-objects", "anonymous-read", "anonymous-list"]:
        assert statuses[allowed] == "ok", (allowed, report.lines)
    for denied, action in [("put-object", "s3:PutObject"), ("delete-object", "s3:DeleteObject"),
                           ("create-multipart-upload", "s3:PutObject")]:
        assert statuses[denied] == "fail", (denied, report.lines)
        assert "AccessDenied" in report.message(denied)
        assert action in report.message(denied)
    # Without an upload ID the later multipart steps cannot be tried; nor can the payload
    # signing be judged without a stored object.
    assert "upload-part" not in statuses and "abort-multipart-upload" not in statuses
    assert "payload-signing" not in statuses
    assert_scratch_gone(s3, bucket)


def test_user_without_listing_gets_403_for_missing_objects(tmp_path, s3, bucket):
    """Allowed to read objects but not to list: a missing object answers 403, which would
    make mxcd's existence check before each upload fail."""
    access_key, secret_key = s3.user("objectreader")
    principal = {"AWS": ["arn:aws:iam:::user/objectreader"]}
    s3.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": principal,
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
             "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}))
    report = check(tmp_path, s3.store_config(bucket, access_key_id=access_key,
                                             secret_access_key=secret_key))
    assert report.returncode == 1
    assert report.statuses["bucket"] == "warn"
    assert report.statuses["list-objects"] == "fail"
    assert "s3:ListBucket" in report.message("list-objects")
    assert report.statuses["head-object"] == "fail"
    assert "404" in report.message("head-object")
    assert report.statuses["put-object"] == "ok"
    # Not allowed to abort the scratch upload: the check completes it and deletes the object.
    assert report.statuses["abort-multipart-upload"] == "fail"
    assert "s3:AbortMultipartUpload" in report.message("abort-multipart-upload")
    assert "completed the scratch upload" in report.message("abort-multipart-upload")
    assert_scratch_gone(s3, bucket)


def test_versioning_warns_and_leaves_no_versions(tmp_path, s3, bucket):
    s3.client().put_bucket_versioning(Bucket=bucket,
                                      VersioningConfiguration={"Status": "Enabled"})
    report = check(tmp_path, s3.store_config(bucket))
    assert report.returncode == 0, report.lines
    assert report.statuses["versioning"] == "warn"
    assert "enabled" in report.message("versioning")
    assert "lifecycle rule" in report.message("versioning")
    assert [s for c, s, _ in report.lines if c != "versioning"] == ["ok"] * (len(ALL_CHECKS) - 1)
    assert_scratch_gone(s3, bucket)
    assert s3.object_versions(bucket) == []


def test_public_read_bucket_fails(tmp_path, s3, bucket):
    s3.client().put_bucket_acl(Bucket=bucket, ACL="public-read")
    report = check(tmp_path, s3.store_config(bucket))
    assert report.returncode == 1
    assert report.statuses["anonymous-list"] == "fail"
    assert "anyone" in report.message("anonymous-list")
    assert_scratch_gone(s3, bucket)


def test_public_objects_fail(tmp_path, s3, bucket):
    s3.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}))
    report = check(tmp_path, s3.store_config(bucket))
    assert report.returncode == 1
    assert report.statuses["anonymous-read"] == "fail"
    assert report.statuses["anonymous-list"] == "ok"
    assert_scratch_gone(s3, bucket)


def test_unreachable_endpoint_fails_quickly(tmp_path, bucket, s3):
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    report = check(tmp_path, s3.store_config(bucket, endpoint=closed))
    elapsed = time.monotonic() - started
    assert report.returncode == 1
    assert report.checks() == ["endpoint"]
    assert report.statuses["endpoint"] == "fail"
    assert "refused" in report.message("endpoint")
    assert elapsed < 10  # two runs of the sanitizer build, without any retry


def test_payload_signature_refusal_suggests_the_other_mode(tmp_path, s3, bucket, proxy):
    # The first PUT of each run is the PutObject.
    def refuse_the_next_put():
        proxy.add(Rule("PUT", times=1, status=400, code="XAmzContentSHA256Mismatch"))

    report = check(tmp_path, s3.store_config(bucket, endpoint=proxy.url),
                   before_each_run=refuse_the_next_put)
    assert report.returncode == 1
    assert report.statuses["put-object"] == "fail"
    assert report.statuses["payload-signing"] == "fail"
    assert "payload_signing: unsigned" in report.message("payload-signing")
    # UploadPart went through: only the PutObject was refused.
    assert report.statuses["upload-part"] == "ok"
    assert_scratch_gone(s3, bucket)


def test_a_server_that_cannot_abort_multipart_uploads_is_a_warning(tmp_path, s3, bucket,
                                                                    proxy):
    """s3rver answers AbortMultipartUpload with an error. mxcd works there (only failed
    uploads leave parts behind), so it is a WARN, and the check still exits 0."""
    def refuse_the_next_abort():
        proxy.add(Rule("DELETE", "uploadId=", times=1, status=501, code="NotImplemented"))

    report = check(tmp_path, s3.store_config(bucket, endpoint=proxy.url),
                   before_each_run=refuse_the_next_abort)
    assert report.statuses["abort-multipart-upload"] == "warn"
    assert "mxcd works without it" in report.message("abort-multipart-upload")
    assert "completed the scratch upload" in report.message("abort-multipart-upload")
    assert report.returncode == 0, report.lines
    assert_scratch_gone(s3, bucket)


@pytest.mark.parametrize("offset,status", [(5 * 60, "warn"), (-20 * 60, "fail")])
def test_clock_skew(tmp_path, s3, bucket, proxy, offset, status):
    proxy.date_offset = offset
    report = check(tmp_path, s3.store_config(bucket, endpoint=proxy.url))
    assert report.statuses["clock"] == status
    assert ("ahead of" if offset < 0 else "behind") in report.message("clock")
    assert report.returncode == (1 if status == "fail" else 0)
    assert_scratch_gone(s3, bucket)


# --- TLS ---

@pytest.mark.parametrize("host,trusted,problem", [
    ("127.0.0.1", True, None),
    ("127.0.0.1", False, "unable to get local issuer certificate"),
    ("localhost", True, "hostname mismatch"),  # the certificate is for 127.0.0.1 only
])
def test_tls_certificate(tmp_path, s3, bucket, certificates, host, trusted, problem):
    tls_proxy = S3FaultProxy(s3.endpoint, tls=(str(certificates / "server.pem"),
                                               str(certificates / "server.key")))
    try:
        endpoint = tls_proxy.url.replace("127.0.0.1", host)
        store = s3.store_config(bucket, endpoint=endpoint)
        if trusted:
            store["ca_file"] = str(certificates / "ca.pem")
        report = check(tmp_path, store)
    finally:
        tls_proxy.close()
    if problem is None:
        assert report.returncode == 0, report.lines
        assert set(report.statuses.values()) == {"ok"}, report.lines
        assert "TLS certificate is valid" in report.message("endpoint")
    else:
        assert report.returncode == 1
        assert report.checks() == ["endpoint"]
        assert problem in report.message("endpoint")
    assert_scratch_gone(s3, bucket)
