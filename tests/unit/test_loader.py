"""Strategy loading: both hook styles, independent instances, params, and errors naming file:line."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from engine.config import LoadedConfig, load_config
from engine.errors import StrategyLoadError
from engine.loader import FrozenParams, LoadedStrategy, load_strategies, load_strategy, params_model

FIXTURES = Path(__file__).parent.parent / "fixtures" / "strategies"

HEADER = """\
instruments:
  - {symbol: MEBL, venue: paper, tick_size: 0.01}
  - {symbol: OGDC, venue: paper, tick_size: 0.01}
venues:
  paper: {adapter: paper}
strategies:
"""
HEADER_LINES = HEADER.count("\n")  # the first strategy line is HEADER_LINES + 1


def write_config(tmp_path: Path, strategies_block: str) -> LoadedConfig:
    path = tmp_path / "config.yaml"
    path.write_text(HEADER + strategies_block)
    return load_config(path)


def config_with(tmp_path: Path, strategies: str) -> LoadedConfig:
    """A config whose strategies block is ``strategies`` (``{fx}`` = the fixtures folder)."""
    return write_config(tmp_path, textwrap.dedent(strategies).format(fx=FIXTURES))


def one_strategy(tmp_path: Path, file: str, params: str = "{}") -> LoadedConfig:
    """One strategy: name on line HEADER_LINES + 1, file on + 2, params on + 5."""
    return write_config(
        tmp_path,
        f"- name: s1\n  file: {FIXTURES}/{file}\n  venue: paper\n  instruments: [MEBL]\n  params: {params}\n",
    )


def load_one(tmp_path: Path, file: str, params: str = "{}") -> LoadedStrategy:
    return load_strategies(one_strategy(tmp_path, file, params))[0]


def load_error(tmp_path: Path, file: str, params: str = "{}") -> StrategyLoadError:
    with pytest.raises(StrategyLoadError) as caught:
        load_one(tmp_path, file, params)
    return caught.value


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line in ``path`` containing ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


# ---- good strategies ---------------------------------------------------------------------


def test_module_style_strategy_registers_its_hooks(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "module_style.py")
    assert loaded.name == "s1"
    assert loaded.plugin is loaded.module
    assert set(loaded.hooks) == {"on_start", "on_book", "on_session_change", "on_fill"}


def test_class_style_strategy_is_instantiated_once(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "class_style.py")
    assert type(loaded.plugin).__name__ == "MarketMaker"
    assert type(loaded.plugin) is loaded.module.MarketMaker
    assert set(loaded.hooks) == {"on_start", "on_fill"}


def test_hooks_not_defined_are_absent(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "module_style.py")
    assert "on_trade" not in loaded.hooks
    assert "on_stop" not in loaded.hooks
    assert "on_order_update" not in loaded.hooks


def test_full_signature_hook_is_the_function_itself(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "module_style.py")
    assert loaded.hooks["on_book"] is loaded.module.on_book


def test_subset_hook_is_called_with_the_full_spec_arguments(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "module_style.py")
    loaded.hooks["on_session_change"]("ctx", "pre_open", "open")  # (ctx, old, new)
    assert loaded.module.CALLS == [("session", "ctx", "open")]


def test_reordered_hook_arguments_are_passed_by_name(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "module_style.py")
    loaded.hooks["on_fill"]("ctx", "fill")  # spec order (ctx, fill); the file says (fill, ctx)
    assert loaded.module.CALLS == [("fill", "fill", "ctx")]


def test_class_method_without_ctx_gets_only_its_argument(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "class_style.py")
    loaded.hooks["on_fill"]("ctx", "fill-1")
    assert loaded.plugin.fills == ["fill-1"]


def test_plugin_manager_still_dispatches_through_pluggy(tmp_path: Path) -> None:
    loaded = load_one(tmp_path, "class_style.py")
    loaded.pm.hook.on_start(ctx="ctx")
    assert loaded.plugin.started == 1


def test_same_file_twice_gets_independent_module_state(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        """\
        - {{name: a, file: {fx}/module_style.py, venue: paper, instruments: [MEBL]}}
        - {{name: b, file: {fx}/module_style.py, venue: paper, instruments: [OGDC]}}
        """,
    )
    first, second = load_strategies(config)
    first.hooks["on_start"]("ctx-a")
    assert first.module is not second.module
    assert first.module.CALLS == [("start", "ctx-a")]
    assert second.module.CALLS == []


def test_same_file_twice_gets_its_own_params(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        """\
        - {{name: a, file: {fx}/module_style.py, venue: paper, params: {{size: 10}}}}
        - {{name: b, file: {fx}/module_style.py, venue: paper, params: {{size: 20}}}}
        """,
    )
    first, second = load_strategies(config)
    assert (first.params.size, second.params.size) == (10, 20)


def test_disabled_strategies_are_not_loaded(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        """\
        - {{name: live, file: {fx}/module_style.py, venue: paper}}
        - {{name: idle, file: {fx}/bad_no_hooks.py, venue: paper, enabled: false}}
        """,
    )
    assert [s.name for s in load_strategies(config)] == ["live"]


# ---- params ----------------------------------------------------------------------------


def test_params_defaults_apply_when_config_gives_none(tmp_path: Path) -> None:
    params = load_one(tmp_path, "module_style.py").params
    assert params.spread_ticks == 4
    assert params.skew == Decimal("0.5")
    assert params.levels == [1, 2]


def test_decimal_param_from_config_is_exact(tmp_path: Path) -> None:
    params = load_one(tmp_path, "module_style.py", "{skew: 0.10}").params
    assert isinstance(params.skew, Decimal)
    assert str(params.skew) == "0.10"


def test_int_and_decimal_params_accept_strings_exactly(tmp_path: Path) -> None:
    params = load_one(tmp_path, "module_style.py", '{size: "250", skew: "0.30"}').params
    assert params.size == 250
    assert params.skew == Decimal("0.30")


def test_decimal_param_accepts_an_int_exactly(tmp_path: Path) -> None:
    params = load_one(tmp_path, "module_style.py", "{skew: 2}").params
    assert params.skew == Decimal(2)
    assert isinstance(params.skew, Decimal)


def test_params_are_read_only(tmp_path: Path) -> None:
    params = load_one(tmp_path, "module_style.py").params
    with pytest.raises(pydantic.ValidationError):
        params.size = 1


def test_class_style_params_come_from_the_class_attribute(tmp_path: Path) -> None:
    params = load_one(tmp_path, "class_style.py", "{size: 75}").params
    assert (params.size, params.skew) == (75, Decimal(0))


def test_unknown_param_names_the_config_line_and_suggests(tmp_path: Path) -> None:
    config = one_strategy(tmp_path, "module_style.py", "\n    spread_tick: 3")
    with pytest.raises(StrategyLoadError) as caught:
        load_strategies(config)
    error = caught.value
    assert error.file == str(tmp_path / "config.yaml")
    assert error.line == HEADER_LINES + 6  # the line of 'spread_tick:'
    assert "unknown param 'spread_tick'" in str(error)
    assert "did you mean 'spread_ticks'?" in str(error)


def test_ill_typed_param_names_the_config_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "module_style.py", "{size: 2.5}")
    assert error.line == HEADER_LINES + 5
    assert "param 'size'" in error.message
    assert "whole number" in error.message


def test_params_without_declared_params_are_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "no_params.py", "{size: 1}")
    assert error.file == str(tmp_path / "config.yaml")
    assert error.line == HEADER_LINES + 5
    assert "declares no PARAMS" in error.message


def test_float_default_in_params_is_refused_at_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_float_param.py")
    assert error.file == str(FIXTURES / "bad_float_param.py")
    assert error.line == line_of(FIXTURES / "bad_float_param.py", "PARAMS =")
    assert "Decimal('0.5')" in error.message


def test_params_model_never_takes_a_binary_float() -> None:
    model = params_model({"skew": Decimal("0.5")})
    with pytest.raises(pydantic.ValidationError):
        model(skew=0.1)


# ---- errors name file and line -------------------------------------------------------------


def test_missing_file_names_the_config_line_of_the_file_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, "no_such_strategy.py")
    assert error.file == str(tmp_path / "config.yaml")
    assert error.line == HEADER_LINES + 2
    assert "does not exist" in error.message


def test_syntax_error_names_the_strategy_line(tmp_path: Path) -> None:
    strategy = tmp_path / "broken.py"
    strategy.write_text("from engine import hookimpl\n\n\n@hookimpl\ndef on_start(ctx):\n    if True\n        pass\n")
    config = config_with(tmp_path, "- {{name: s1, file: broken.py, venue: paper}}\n")
    with pytest.raises(StrategyLoadError) as caught:
        load_strategies(config)
    assert str(caught.value).startswith(f"{tmp_path}/broken.py:6:")
    assert "syntax error" in caught.value.message


def test_import_error_names_the_import_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_import.py")
    assert error.file == str(FIXTURES / "bad_import.py")
    assert error.line == line_of(FIXTURES / "bad_import.py", "import engine_no_such_module_for_tests")
    assert "engine_no_such_module_for_tests" in error.message


def test_exception_at_import_names_the_raising_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_raises.py")
    assert error.line == line_of(FIXTURES / "bad_raises.py", 'return {}["missing"]')
    assert "KeyError" in error.message


def test_unknown_hook_names_its_def_line_and_suggests(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_unknown_hook.py")
    assert error.file == str(FIXTURES / "bad_unknown_hook.py")
    assert error.line == line_of(FIXTURES / "bad_unknown_hook.py", "def on_books")
    assert "did you mean 'on_book'?" in error.message


def test_unmarked_hook_names_its_line_and_says_add_hookimpl(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_unmarked.py")
    assert error.line == line_of(FIXTURES / "bad_unmarked.py", "def on_book")
    assert "add @hookimpl" in error.message


def test_hook_with_wrong_arguments_lists_the_allowed_names(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_args.py")
    assert error.line == line_of(FIXTURES / "bad_args.py", "def on_book")
    assert "'bok'" in error.message
    assert "ctx, book" in error.message


def test_two_hook_classes_are_refused_at_the_second_class(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_two_classes.py")
    assert error.line == line_of(FIXTURES / "bad_two_classes.py", "class Second")
    assert "one class" in error.message


def test_file_without_hooks_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_no_hooks.py")
    assert error.file == str(FIXTURES / "bad_no_hooks.py")
    assert "defines no hooks" in error.message


def test_error_text_reads_path_line_message(tmp_path: Path) -> None:
    error = load_error(tmp_path, "bad_args.py")
    assert str(error) == f"{error.file}:{error.line}: {error.message}"


def test_all_problems_of_all_strategies_are_reported_together(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        """\
        - {{name: a, file: {fx}/bad_args.py, venue: paper}}
        - {{name: b, file: {fx}/bad_unmarked.py, venue: paper}}
        - {{name: c, file: {fx}/module_style.py, venue: paper, params: {{nope: 1}}}}
        """,
    )
    with pytest.raises(StrategyLoadError) as caught:
        load_strategies(config)
    files = [problem.file for problem in caught.value.problems]
    assert files == [str(FIXTURES / "bad_args.py"), str(FIXTURES / "bad_unmarked.py"), str(tmp_path / "config.yaml")]


def test_load_strategy_loads_one_entry_by_index(tmp_path: Path) -> None:
    loaded = load_strategy(one_strategy(tmp_path, "class_style.py"), 0)
    assert loaded.file == FIXTURES / "class_style.py"


def test_class_method_without_self_is_refused_with_its_line(tmp_path):
    strategy = tmp_path / "noself.py"
    strategy.write_text(
        "from engine import hookimpl\n"
        "\n"
        "class Quoter:\n"
        "    @hookimpl\n"
        "    def on_start(ctx):\n"
        "        pass\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "instruments:\n"
        "  - {symbol: MEBL, venue: paper, tick_size: 0.01, lot_size: 1, previous_close: 187.50}\n"
        "venues:\n"
        "  paper: {adapter: paper}\n"
        "strategies:\n"
        "  - {name: s, file: noself.py, venue: paper, instruments: [MEBL]}\n"
    )
    with pytest.raises(StrategyLoadError) as caught:
        load_strategies(load_config(config))
    message = str(caught.value)
    assert f"{strategy}:5" in message
    assert "first argument must be 'self'" in message


def test_params_read_as_slots_and_answer_like_the_pydantic_model(tmp_path: Path) -> None:
    """ctx.params is a slot view of the model (a read per event costs a slot load, not
    BaseModel.__getattr__'s slot): every error and the model's API stay the model's."""
    params = load_one(tmp_path, "module_style.py", "{size: 75}").params
    model = params._model
    assert isinstance(params, FrozenParams) and not hasattr(type(params), "__getattr__")
    assert "__dict__" not in dir(params)  # fields are slots
    assert (params.size, params.skew) == (model.size, model.skew) == (75, Decimal("0.5"))
    assert params.model_dump() == model.model_dump() and repr(params) == repr(model) and params == model
    for name in ("size", "unknown"):
        with pytest.raises(pydantic.ValidationError, match="frozen"):
            setattr(params, name, 1)
        with pytest.raises(pydantic.ValidationError, match="frozen"):
            delattr(params, name)
    with pytest.raises(AttributeError) as seen:
        params.sizee  # noqa: B018
    with pytest.raises(AttributeError) as expected:
        model.sizee  # noqa: B018
    assert str(seen.value) == str(expected.value) == f"'{type(model).__name__}' object has no attribute 'sizee'"
