// Compiled by the layers_* tests (CMakeLists.txt) as part of one layer, with MXCD_PROBE_HEADER
// naming a header of a layer above it: the build must fail because that header is not on the
// layer's include path.
#include MXCD_PROBE_HEADER
