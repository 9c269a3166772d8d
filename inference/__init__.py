"""inference: the OpenAI-compatible LLM pool client, routing, token accounting, the local model server and the scripted test server.

``client.LLMPool`` (one client for every engine), ``routing.Router``,
``budget.TokenBudget``, ``results.ChatResult``, ``settings.InferenceSettings``,
``errors``; ``scripted.ScriptedServer`` answers from a ``script.Script`` over
real HTTP; ``local_vllm`` installs and runs vLLM's CPU build with a small model.
Imports nothing of ours; this file imports nothing at all.
"""
