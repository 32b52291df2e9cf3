"""`default`, drp's own protocol: a chat request with the student family's instruction (`--prompt-template`),
capped by `--max-tokens`, graded by math-verify on the boxed answer."""

from __future__ import annotations

from drp.errors import UserError
from drp.evals.protocols.registry import DEFAULT_PROTOCOL, Plan, Protocol, Request, register


@register
class ChatProtocol(Protocol):
    name = DEFAULT_PROTOCOL
    summary = "chat requests with the student family's instruction."

    def options(self, common, seeds, given):
        if given("score"):
            raise UserError(
                "--score chooses the headline under --protocol paper; the default protocol scores by math-verify"
            )
        return common, seeds, None

    def plan(self, benchmarks, template, settings, endpoint, counter, echo) -> Plan:
        from drp.evals.templates import fill_template

        return Plan(
            {
                b.name: {
                    p.id: Request(messages=({"role": "user", "content": fill_template(template, p.question)},))
                    for p in b.problems
                }
                for b in benchmarks
            }
        )
