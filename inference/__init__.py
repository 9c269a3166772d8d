"""inference: the OpenAI-compatible LLM pool client, routing, token accounting.

Also the local model server (vLLM on the CPU) and the scripted test server.
"""
