"""Templates are bounded: source size at save, rendered size per part, render time, and the memory
a render may build or the process may keep compiled (issue 13, defect 2)."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from infra.errors import PermanentError
from infra.settings import Settings
from workers.rules.templates import (
    TemplateLimits,
    TemplateRenderError,
    cache_sizes,
    check,
    render,
    render_part,
)

LIMITS = TemplateLimits()

#: Each would build far more than any part may hold; each is refused before it is built.
HUGE = [
    "{{ 'y' * 100000001 }}",
    "{{ 100000001 * 'y' }}",
    "{{ ['y'] * 100000001 }}",
    "{{ 'y' * 10 ** 8 }}",
    "{{ 2 ** 100000 }}",
    "{% set a = 'y' * 90000 %}{{ a ~ a }}",
    "{% set a = 'y' * 90000 %}{{ a + a }}",
    "{% set a = 'y' * 90000 %}{{ [a, a, a, a, a]|join }}",
    "{% set a = 'y' * 90000 %}{{ [a, a, a, a, a] }}",
    "{% set a = 'y' * 90000 %}{{ [a, a, a, a, a]|string }}",
    "{{ ('y' * 90000)|replace('', 'yy') }}",
    "{{ '%0100000000d' % 1 }}",
    "{% for i in range(100000000) %}{% endfor %}",
    "{% for i in range(1000) %}{{ 'y' * 1000 }}{% endfor %}",
    "{% for i in range(1000) %}{% set b = 'y' * 90000 ~ i %}{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
]


@pytest.mark.parametrize("source", HUGE)
def test_a_huge_value_is_refused_before_it_is_built(source: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(PermanentError, match="limit"):
            render(source, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"{source}: {peak} bytes at the peak"


def test_the_repetition_from_the_issue_is_refused_naming_the_template_and_the_line() -> None:
    with pytest.raises(TemplateRenderError) as refused:
        render_part("Hello,\n{{ 'y' * 100000001 }}", {}, name="invoice.email.en.text", part="text")
    message = str(refused.value)
    assert message.startswith("invoice.email.en.text line 2: "), message
    assert "100000001" in message
    assert "limit of 100000" in message


def test_each_part_stops_at_its_limit() -> None:
    subject = "{% for i in range(31) %}0123456789{% endfor %}"
    with pytest.raises(TemplateRenderError, match="subject is over the limit of 300 characters"):
        render_part(subject, {}, name="invoice.email.en.subject", part="subject")
    assert len(render_part(subject, {}, name="t", part="text")) == 310
    small = TemplateLimits(email_chars=1000)
    with pytest.raises(TemplateRenderError, match=r"text is over the limit of 1000 characters"):
        render_part("{{ 'x' * 600 }}{{ 'x' * 600 }}", {}, name="t", part="text", limits=small)


def test_a_render_that_takes_too_long_stops_with_a_permanent_error_naming_the_line() -> None:
    ticks = itertools.count()  # a clock that moves 0.1 s each time it is read
    source = "ok\n{% for i in range(100) %}{{ i }}{% endfor %}"
    with pytest.raises(TemplateRenderError, match=r"^t line 2: rendering took longer than 1\.0 s"):
        render_part(source, {}, name="t", part="text", clock=lambda: next(ticks) / 10)


def test_a_source_over_the_limit_is_refused_at_save_naming_the_line_it_crosses_it_on() -> None:
    source = "x" * 50 + "\n" + "y" * 100
    (problem,) = check(source, "invoice", "t", limits=TemplateLimits(source_chars=100))
    assert str(problem) == "t line 2: the template is 151 characters, over the limit of 100"
    assert check("{{ invoice.number }}", "invoice", "t", limits=TemplateLimits(source_chars=100)) == []


def test_the_compiled_template_cache_is_bounded_by_bytes_and_shrinks_to_a_lower_bound() -> None:
    limits = TemplateLimits(cache_bytes=64 * 1024)
    for i in range(300):
        source = f"{i} " + "x" * 1000
        assert render(source, {}, limits=limits).startswith(f"{i} ")
        check(source, "invoice", "t", limits=limits)
    sizes = cache_sizes()
    assert 0 < sizes["compiled"] <= 64 * 1024
    assert 0 < sizes["checked"] <= 64 * 1024
    tighter = TemplateLimits(cache_bytes=8 * 1024)
    render("again", {}, limits=tighter)
    check("again", "invoice", "t", limits=tighter)
    assert 0 < cache_sizes()["compiled"] <= 8 * 1024
    assert 0 < cache_sizes()["checked"] <= 8 * 1024


def test_the_limits_default_to_the_settings_defaults() -> None:
    assert TemplateLimits.from_settings(Settings()) == TemplateLimits()
    chosen = Settings(template_max_email_chars=5000, template_render_timeout_seconds=2.5)
    assert (
        TemplateLimits.from_settings(chosen).email_chars,
        TemplateLimits.from_settings(chosen).seconds,
    ) == (
        5000,
        2.5,
    )
