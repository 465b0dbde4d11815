"""nginx as the load balancer in front of several mxcd instances (round robin), configured the
way docs/scaling.md recommends: uploads streamed, downloads through memory buffers only,
keep-alive to the upstreams."""

import subprocess
import time

import requests

from harness import free_port


class LoadBalancer:
    def __init__(self, directory, upstream_urls):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"    server {url.removeprefix('http://')};" for url in upstream_urls)
        conf = directory / "nginx.conf"
        # `user root` only matters when the tests run as root (then the workers need it to
        # write their temporary files here); as another user nginx ignores it with a warning.
        conf.write_text(f"""worker_processes 2;
user root;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log {directory}/access.log;
  client_body_temp_path {directory}/client_body;
  proxy_temp_path {directory}/proxy;
  fastcgi_temp_path {directory}/fastcgi;
  uwsgi_temp_path {directory}/uwsgi;
  scgi_temp_path {directory}/scgi;
  upstream mxcd {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    client_max_body_size 0;
    location / {{
      proxy_pass http://mxcd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_request_buffering off;
      proxy_max_temp_file_size 0;
    }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(directory)],
                                     stderr=open(directory / "stderr.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/_mxcd/health", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("nginx did not start: " + (directory / "error.log").read_text())

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
