"""Config loading: exact numbers, errors that name the line, env substitution, cross-field rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config import EngineConfig, LoadedConfig, apply_overrides, load_config, validate_section
from engine.errors import ConfigError
from engine.model import Instrument
from engine.venue import AdapterOptions

VALID = """\
run:
  start: 2026-11-23
  days: 2
  seed: 42
logging: {level: info}
instruments:
  - {symbol: MEBL, venue: paper, tick_size: 0.01, lot_size: 1, previous_close: 187.50, sector: Commercial Banks}
  - {symbol: OGDC, venue: paper, tick_size: 0.05, previous_close: 100}
venues:
  paper:
    adapter: paper
    options: {}
strategies:
  - name: mm_fast
    file: strategies/market_maker.py
    venue: paper
    instruments: [MEBL, OGDC]
    params: {spread_ticks: 4, skew: 0.10}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> LoadedConfig:
    return load_config(write(tmp_path, text), environ=environ or {})


def load_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return caught.value


def problem_with(error: ConfigError, text: str) -> ConfigError:
    """The one problem of ``error`` whose message contains ``text``."""
    matching = [problem for problem in error.problems if text in problem.message]
    assert len(matching) == 1, [str(problem) for problem in error.problems]
    return matching[0]  # type: ignore[return-value]


def replaced(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


# ---- values -------------------------------------------------------------------------------


def test_yaml_floats_become_exact_decimals(tmp_path: Path) -> None:
    config = load(tmp_path, VALID).config
    assert config.instruments[0].tick_size == Decimal("0.01")
    assert isinstance(config.instruments[0].tick_size, Decimal)
    assert str(config.instruments[0].previous_close) == "187.50"


def test_floats_in_free_form_params_are_decimals_too(tmp_path: Path) -> None:
    params = load(tmp_path, VALID).config.strategies[0].params
    assert params == {"spread_ticks": 4, "skew": Decimal("0.10")}
    assert isinstance(params["spread_ticks"], int)


def test_dates_are_dates(tmp_path: Path) -> None:
    assert load(tmp_path, VALID).config.run.start == dt.date(2026, 11, 23)


def test_only_true_and_false_are_booleans(tmp_path: Path) -> None:
    text = replaced("name: mm_fast", "name: on")
    assert load(tmp_path, text).config.strategies[0].name == "on"


def test_base_60_numbers_stay_text(tmp_path: Path) -> None:
    text = replaced("options: {}", "options: {open_at: 9:30}")
    assert load(tmp_path, text).config.venues["paper"].options == {"open_at": "9:30"}


def test_instrument_converts_to_the_model(tmp_path: Path) -> None:
    instrument = load(tmp_path, VALID).config.instruments[1].to_instrument()
    assert instrument == Instrument(
        symbol="OGDC", venue="paper", tick_size=Decimal("0.05"), lot_size=Decimal(1),
        previous_close=Decimal(100), sector="", price_precision=2,
    )


def test_strategy_files_resolve_against_the_config_folder(tmp_path: Path) -> None:
    loaded = load(tmp_path, VALID)
    assert loaded.resolve(loaded.config.strategies[0].file) == tmp_path / "strategies" / "market_maker.py"


def test_line_map_records_keys_and_list_items(tmp_path: Path) -> None:
    loaded = load(tmp_path, VALID)
    assert loaded.lines[("strategies", 0, "params", "spread_ticks")][0] == 18
    assert loaded.lines[("strategies", 0, "instruments", 1)] == (17, 25)


def test_merge_keys_from_an_x_block_fill_a_strategy(tmp_path: Path) -> None:
    text = "x-common: &common\n  venue: paper\n" + replaced("    venue: paper\n", "    <<: *common\n")
    strategy = load(tmp_path, text).config.strategies[0]
    assert strategy.venue == "paper"


# ---- errors name the line -------------------------------------------------------------------


def test_unknown_key_names_its_line_and_suggests(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("  days: 2", "  dayz: 2"))
    assert str(error) == f"{tmp_path}/config.yaml:3: run.dayz: unknown key 'dayz'; did you mean 'days'?"


def test_unknown_key_inside_a_list_item_names_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("    venue: paper\n    instruments", "    venu: paper\n    instruments"))
    problem = problem_with(error, "unknown key 'venu'")
    assert problem.line == 16
    assert problem.message.endswith("did you mean 'venue'?")


def test_wrong_type_names_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("days: 2", "days: many"))
    assert error.line == 3
    assert error.message.startswith("run.days: Input should be a valid integer")


def test_out_of_range_value_names_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("tick_size: 0.05", "tick_size: 0"))
    assert error.line == 8
    assert "instruments[1].tick_size" in error.message


def test_missing_required_key_names_the_item_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("    file: strategies/market_maker.py\n", ""))
    assert error.line == 14
    assert error.message == "strategies[0].file: required key 'file' is missing"


def test_every_validation_problem_is_listed(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("days: 2", "days: 0").replace("seed: 42", "seed: x"))
    assert [problem.line for problem in error.problems] == [3, 4]


def test_broken_yaml_names_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("    instruments: [MEBL, OGDC]", "    instruments: [MEBL, OGDC"))
    assert str(error).startswith(f"{tmp_path}/config.yaml:18:11: the YAML does not parse: expected ',' or ']'")


def test_broken_yaml_points_at_the_offending_character(tmp_path: Path) -> None:
    error = load_error(tmp_path, "run:\n  days: 1\n   seed: 2\n")
    assert (error.line, error.column) == (3, 8)


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("  seed: 42\n", "  seed: 42\n  days: 3\n"))
    assert error.line == 5
    assert "'days' appears twice in this mapping (first at line 3)" in error.message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    assert "empty" in load_error(tmp_path, "# nothing\n").message


# ---- environment ---------------------------------------------------------------------------


def test_env_variable_is_substituted_and_marked_secret(tmp_path: Path) -> None:
    loaded = load(tmp_path, replaced("options: {}", "options: {api_key: '${PSX_KEY}'}"), {"PSX_KEY": "k-123"})
    assert loaded.config.venues["paper"].options["api_key"] == "k-123"
    assert ("venues", "paper", "options", "api_key") in loaded.secret_paths


def test_env_default_applies_when_unset(tmp_path: Path) -> None:
    loaded = load(tmp_path, replaced("options: {}", "options: {url: 'ws://${HOST:-localhost}:9000'}"))
    assert loaded.config.venues["paper"].options["url"] == "ws://localhost:9000"


def test_redacted_view_hides_env_values(tmp_path: Path) -> None:
    loaded = load(tmp_path, replaced("options: {}", "options: {api_key: '${PSX_KEY}'}"), {"PSX_KEY": "k-123"})
    assert loaded.redacted()["venues"]["paper"]["options"]["api_key"] == "***"
    assert "k-123" not in repr(loaded)


def test_missing_env_variable_names_key_line_and_variable(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("options: {}", "options: {api_key: '${PSX_KEY}'}"))
    assert error.line == 12
    assert error.message.startswith("venues.paper.options.api_key: environment variable PSX_KEY is not set")


def test_invalid_env_value_is_never_printed(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("seed: 42", "seed: ${SEED}"), {"SEED": "hunter2"})
    assert error.line == 4
    assert "hunter2" not in str(error)


def test_dollar_dollar_escapes_a_literal_reference(tmp_path: Path) -> None:
    loaded = load(tmp_path, replaced("options: {}", "options: {note: '$${NOT_ENV}'}"))
    assert loaded.config.venues["paper"].options["note"] == "${NOT_ENV}"


# ---- cross-field rules ----------------------------------------------------------------------

STRATEGY_2 = """\
  - name: {name}
    file: other.py
    venue: {venue}
    instruments: [{symbol}]
"""


def with_second_strategy(name: str = "mm_slow", venue: str = "paper", symbol: str = "MEBL") -> str:
    return VALID + STRATEGY_2.format(name=name, venue=venue, symbol=symbol)


def test_duplicate_strategy_names_are_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, with_second_strategy(name="mm_fast"))
    assert error.line == 19
    assert "'mm_fast' is already used by strategies[0]" in error.message


def test_strategy_venue_must_be_configured(tmp_path: Path) -> None:
    error = load_error(tmp_path, with_second_strategy(venue="papr"))
    assert error.line == 21
    assert error.message == "strategies[1].venue: venue 'papr' is not defined under venues; did you mean 'paper'?"


def test_strategy_instrument_must_be_in_the_master(tmp_path: Path) -> None:
    error = load_error(tmp_path, with_second_strategy(symbol="HBL"))
    assert error.line == 22
    assert "HBL is not in the instrument master for venue 'paper'" in error.message


def test_duplicate_instrument_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("symbol: OGDC", "symbol: MEBL"))
    assert problem_with(error, "paper:MEBL is already in the instrument master at instruments[0]").line == 8


def test_at_least_one_strategy_must_be_enabled(tmp_path: Path) -> None:
    error = load_error(tmp_path, VALID + "    enabled: false\n")
    assert error.line == 13
    assert "no strategy is enabled" in error.message


def test_tick_size_finer_than_price_precision_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, replaced("tick_size: 0.05,", "tick_size: 0.005, price_precision: 2,"))
    assert error.line == 8
    assert "price_precision" in error.message


# ---- sections and overrides -----------------------------------------------------------------


class DemoOptions(AdapterOptions):
    url: str
    timeout_seconds: Decimal = Decimal(5)


def test_validate_section_returns_the_model(tmp_path: Path) -> None:
    loaded = load(tmp_path, replaced("options: {}", "options: {url: 'ws://x', timeout_seconds: 2.5}"))
    key_path = ("venues", "paper", "options")
    options = validate_section(loaded, DemoOptions, loaded.config.venues["paper"].options, key_path)
    assert options.timeout_seconds == Decimal("2.5")


def test_validate_section_names_the_line_of_a_bad_option(tmp_path: Path) -> None:
    text = replaced("    options: {}", "    options:\n      url: ws://x\n      timeout_secs: 2")
    loaded = load(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        validate_section(loaded, DemoOptions, loaded.config.venues["paper"].options, ("venues", "paper", "options"))
    assert caught.value.line == 14
    assert caught.value.message.endswith("unknown key 'timeout_secs'; did you mean 'timeout_seconds'?")


def test_overrides_return_a_changed_copy(tmp_path: Path) -> None:
    config = load(tmp_path, VALID).config
    changed = apply_overrides(config, speed="60", seed=7, report="out.json")
    assert (changed.run.speed, changed.run.seed, changed.run.report) == (Decimal(60), 7, Path("out.json"))
    assert (config.run.speed, config.run.seed, config.run.report) == (Decimal(0), 42, None)


def test_invalid_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--speed"):
        apply_overrides(load(tmp_path, VALID).config, speed="-1")


def test_engine_config_enforces_cross_field_rules_without_the_loader() -> None:
    with pytest.raises(ValueError, match="no strategy is enabled"):
        EngineConfig.model_validate({"strategies": []})
