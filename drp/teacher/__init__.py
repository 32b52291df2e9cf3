"""The teacher LLM, as the agents see it: `Teacher.ask` sends one structured request and returns a Reply.

- client.py: the client itself (langchain-openai), its settings and its errors;
- replies.py: reading a reply (the JSON inside free text, validated against the agent's schema).
"""

from drp.teacher.client import Reply, Teacher, TeacherError, TeacherSettings

__all__ = ["Reply", "Teacher", "TeacherError", "TeacherSettings"]
