"""The teacher LLM, as the agents see it: `Teacher.ask` sends one structured request and returns a Reply.

- client.py: the client itself (langchain-openai), its settings and its errors;
- resource.py: the chat-completions call ChatOpenAI makes, posted through the openai client as built;
- endpoints.py: the HTTP transport online: several endpoints, least busy first, failing ones set aside;
- bodies.py: an endpoint's reply read capped, decompressed within bounds and held to a chat completion's shape;
- batch.py: the HTTP transport in batch mode: requests queued into OpenAI Batch API jobs;

A request's path, one layer each, online:
  ChatOpenAI (langchain-openai: the messages and structured output; the openai client under it keeps the retry
    policy and the errors)
  → resource.ChatCompletions (posts as langchain built it, skipping the SDK's typed re-walk of the parameters,
    which costs 14-17% more orchestrator CPU per trace: orchestration.py's `sdk-create` variant)
  → endpoints.EndpointPool (an httpx transport: picks the endpoint, fails over, reads the reply capped)
  → aiohttp (the bytes: less CPU per request than httpx's own pool).
- scope.py: what travels beside a request down to the transport (its trace, node, attempt; the endpoint used);
- replies.py: reading a reply (the JSON inside free text, validated against the agent's schema).
"""

from drp.teacher.client import Reply, Teacher, TeacherError, TeacherSettings

__all__ = ["Reply", "Teacher", "TeacherError", "TeacherSettings"]
