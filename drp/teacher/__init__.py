"""The teacher LLM, as the agents see it: `Teacher.ask` sends one structured request and returns a Reply.

- client.py: the client itself (langchain-openai), its settings and its errors;
- endpoints.py: the HTTP transport online: several endpoints, least busy first, failing ones set aside;
- bodies.py: an endpoint's reply read capped, decompressed within bounds and held to a chat completion's shape;
- batch.py: the HTTP transport in batch mode: requests queued into OpenAI Batch API jobs;
- scope.py: what travels beside a request down to the transport (its trace, node, attempt; the endpoint used);
- replies.py: reading a reply (the JSON inside free text, validated against the agent's schema).

A request's path online, one layer each:
  ChatOpenAI (langchain-openai: messages, structured output; the openai client under it: retry policy, errors)
  → endpoints.EndpointPool (an httpx transport: picks the endpoint, fails over, reads the reply capped)
  → aiohttp (the bytes: less CPU per request than httpx's own pool).
"""

from drp.teacher.client import Reply, Teacher, TeacherError, TeacherSettings

__all__ = ["Reply", "Teacher", "TeacherError", "TeacherSettings"]
