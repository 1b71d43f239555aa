-- Loaded by busted before every spec (see tests/CMakeLists.txt).
package.path = (os.getenv("MXDEPLOY_SOURCE_DIR") or ".") .. "/tests/support/?.lua;" .. package.path
