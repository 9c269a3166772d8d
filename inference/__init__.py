"""inference: the OpenAI-compatible LLM pool client, routing, token accounting, the local model server and the scripted test server."""
