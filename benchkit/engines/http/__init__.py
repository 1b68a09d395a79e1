"""Engines that reach a running server over HTTP: the client and server lifecycle, the OpenAI-compatible API and Ollama's."""
