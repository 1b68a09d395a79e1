"""llama.cpp's engines: in process through llama-cpp-python's C API, llama-bench and llama-server built from the same source, their shared options and the tool builds."""
