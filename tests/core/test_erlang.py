"""Erlang C against published values, a hand calculation and the factorial formula."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from core.operations.erlang import (
    erlang_b,
    erlang_c,
    expected_wait,
    min_agents,
    service_level,
    wait_quantile,
)

# Call Centre Helper, "Erlang C Formula – Made Simple With an Easy Worked Example"
# (callcentrehelper.com): 100 calls per half hour, average handling time 180 s, so
# A = 10 Erlangs; target 80% answered within 20 s. Probability of waiting Pw for 11..14
# agents as that worked example tabulates it (68.21%, 44.94%, 28.53%, 17.41%), and 14 as
# the first count meeting 80/20.
CLASSIC_LOAD = 10.0
CLASSIC_SERVICE = 3.0  # minutes
CLASSIC_TARGET = 20 / 60  # minutes
CLASSIC_PW = {11: 0.6821, 12: 0.4494, 13: 0.2853, 14: 0.1741}


@pytest.mark.parametrize(("agents", "pw"), sorted(CLASSIC_PW.items()))
def test_probability_of_waiting_matches_the_classic_call_centre_example(agents, pw):
    assert erlang_c(agents, CLASSIC_LOAD) == pytest.approx(pw, abs=5e-5)


def test_classic_example_needs_14_agents_for_80_percent_in_20_seconds():
    levels = {
        n: service_level(n, CLASSIC_LOAD, CLASSIC_SERVICE, CLASSIC_TARGET) for n in range(11, 15)
    }

    assert levels[13] < 0.8 <= levels[14]
    assert levels[13] == pytest.approx(0.7956, abs=5e-4)
    assert levels[14] == pytest.approx(0.8884, abs=5e-4)
    assert min_agents(CLASSIC_LOAD, CLASSIC_SERVICE, CLASSIC_TARGET, 0.8) == 14


def test_average_speed_of_answer_in_the_classic_example():
    # ASA = Pw × AHT / (N − A): 14 agents → 0.1741 × 180 s / 4 ≈ 7.8 s.
    asa_seconds = expected_wait(14, CLASSIC_LOAD, CLASSIC_SERVICE) * 60
    assert asa_seconds == pytest.approx(7.8, abs=0.05)


def test_textbook_exercise_ten_servers_six_erlangs_wait_about_one_in_ten():
    # 120 customers an hour, 3 minutes each, 10 servers: "the probability of waiting is
    # about 0.10" read off the Erlang C curve (a standard M/M/m exercise).
    assert erlang_c(10, 6.0) == pytest.approx(0.10, abs=0.005)


def test_hand_calculation_three_servers_two_erlangs():
    # B(3, 2) = (2³/3!) / (1 + 2 + 2 + 8/6) = 4/19; C = 3B / (3 − 2(1 − B)) = 4/9.
    assert erlang_b(3, 2.0) == pytest.approx(4 / 19, rel=1e-12)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)


def exact_erlang_c(n: int, a: int) -> Fraction:
    """The factorial formula in exact arithmetic (fine for small n)."""
    top = Fraction(a**n, math.factorial(n)) * Fraction(n, n - a)
    bottom = sum(Fraction(a**k, math.factorial(k)) for k in range(n)) + top
    return top / bottom


@pytest.mark.parametrize(("n", "a"), [(2, 1), (5, 3), (12, 9), (30, 25), (60, 55)])
def test_recursion_agrees_with_the_factorial_formula(n, a):
    assert erlang_c(n, float(a)) == pytest.approx(float(exact_erlang_c(n, a)), rel=1e-9)


def test_large_loads_stay_finite_and_monotone():
    # The City centre at its busiest is tens of Erlangs; go far beyond, where n! overflows.
    load = 900.0
    values = [erlang_c(n, load) for n in (901, 920, 950, 1000)]
    assert all(0.0 < v < 1.0 for v in values)
    assert values == sorted(values, reverse=True)
    agents = min_agents(load, 10.0, 15.0, 0.8)
    assert load < agents < load + 20
    assert service_level(agents, load, 10.0, 15.0) >= 0.8 > service_level(agents - 1, load, 10, 15)


def test_unstable_queue_and_no_load():
    assert erlang_c(10, 10.0) == 1.0
    assert expected_wait(9, 10.0, 3.0) == math.inf
    assert wait_quantile(10, 12.0, 3.0) == math.inf
    assert service_level(5, 6.0, 3.0, 1.0) == 0.0
    assert erlang_c(3, 0.0) == 0.0
    assert min_agents(0.0, 3.0, 1.0, 0.8) == 0
    assert wait_quantile(3, 0.0, 3.0) == 0.0


def test_p90_wait_is_where_the_service_level_reaches_90_percent():
    p90 = wait_quantile(12, CLASSIC_LOAD, CLASSIC_SERVICE, 0.9)
    assert p90 > 0
    assert service_level(12, CLASSIC_LOAD, CLASSIC_SERVICE, p90) == pytest.approx(0.9, abs=1e-9)
    # Few enough wait at all that the 90th percentile waits nothing.
    assert wait_quantile(30, CLASSIC_LOAD, CLASSIC_SERVICE, 0.9) == 0.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        erlang_b(-1, 2.0)
    with pytest.raises(ValueError):
        min_agents(2.0, 3.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        wait_quantile(3, 2.0, 3.0, 0.0)
