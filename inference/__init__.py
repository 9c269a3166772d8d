"""inference: the OpenAI-compatible LLM pool client, routing, token accounting, the local model server and the scripted test server.

``client.LLMPool`` (one client for every engine), ``routing.Router``,
``endpoints.PoolEndpoints`` (a client per endpoint, kept in step with
``discovery.Discovery`` of a headless Service's pods, and the
``overflow`` endpoint switched by the pool's ``/metrics``), ``spans``,
``budget.TokenBudget``, ``results.ChatResult``, ``settings.InferenceSettings``,
``errors``; ``testing.server.ScriptedServer`` answers from a ``testing.script.Script``
over real HTTP (and reports a settable ``vllm:num_requests_waiting``);
``local.vllm`` installs and runs vLLM's CPU build with a small model.
Imports nothing of ours; this file imports nothing at all.
"""
