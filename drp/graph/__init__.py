"""The LangGraph pruning graph: one invocation handles one trace."""
