"""bot/envfile.py reads a file as systemd's ``EnvironmentFile=`` does (issue 20, point 1).

The cases are systemd's own (src/test/test-env-file.c): the same inputs must give the same
variables, so what carebot reads from ``--env-file`` is what the unit's service gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import envfile


def values(text: str) -> dict[str, str]:
    return envfile.parse(text).values


def test_continuations_escapes_and_later_wins() -> None:
    text = ("a=a\na=b\na=b\na=a\nb=b\\\nc\nd= d\\\ne  \\\nf  \ng=g\\ \n"
            "h= ąęół\\ śćńźżμ \ni=i\\")
    assert values(text) == {"a": "a", "b": "bc", "d": "de  f", "g": "g ",
                            "h": "ąęół śćńźżμ", "i": "i"}


def test_backslash_at_the_end_of_the_file() -> None:
    assert values("a=a\\\n") == {"a": "a"}


def test_comments_do_not_continue_since_v254() -> None:
    text = ('#SPAMD_ARGS="-d --socketpath=/var/lib/bulwark/spamd \\\n'
            "#--nouser-config                                     \\\n"
            "normal1=line\\\n111\n"
            ";normal=ignored                                      \\\n"
            "normal2=line222\n"
            "normal ignored                                       \\\n")
    assert values(text) == {"normal1": "line111", "normal2": "line222"}


def test_blank_lines_and_quoted_blanks() -> None:
    text = ('# Generated\n\nHWMON_MODULES="coretemp f71882fg"\n\n# For compatibility reasons\n'
            "\nMODULE_0=coretemp\nMODULE_1=f71882fg")
    assert values(text) == {"HWMON_MODULES": "coretemp f71882fg", "MODULE_0": "coretemp",
                            "MODULE_1": "f71882fg"}


def test_empty_values() -> None:
    assert values("a=\nb=") == {"a": "", "b": ""}


def test_escapes_in_each_quoting() -> None:
    text = ("a=\\ \\n \\t \\x \\y \\' \n"
            "b= \\$'                  \n"
            "c= ' \\n\\t\\$\\`\\\\\n'   \n"
            'd= " \\n\\t\\$\\`\\\\\n"   \n')
    assert values(text) == {"a": " n t x y '", "b": "$'", "c": " \\n\\t\\$\\`\\\\\n",
                            "d": " \\n\\t$`\\\n"}


def test_a_hash_after_a_value_is_part_of_it() -> None:
    """The crash-loop of issue 20: systemd keeps the comment, a shell drops it."""
    text = ("one=BAR   \n# comment\n # comment \n ; comment \n  two   =   bar    \n"
            "invalid line\ninvalid line #comment\nthree = \"333\nxxxx\"\n"
            "four = '44\\\"44'\nfive = \"55\\\"55\" \"FIVE\" cinco   \n"
            "six = seis sechs\\\n sis\nseven=\"sevenval\" #nocomment\n"
            "eight=eightval #nocomment\nexport nine=nineval\nten=ignored\nten=ignored\nten=\n"
            "eleven=\\value\ntwelve=\"\\value\"\nthirteen='\\value'")
    parsed = envfile.parse(text)
    assert parsed.values == {
        "one": "BAR", "two": "bar", "three": "333\nxxxx", "four": '44\\"44',
        "five": '55"55FIVEcinco', "six": "seis sechs sis", "seven": "sevenval#nocomment",
        "eight": "eightval #nocomment", "ten": "", "eleven": "value",
        "twelve": "\\value", "thirteen": "\\value"}
    # "export nine" is no variable name: systemd's service never sees it
    assert (16, "'export nine' is not a variable name") in parsed.ignored
    assert parsed.lines["eight"] == 15


def test_multiline_values() -> None:
    text = ("one=BAR\\\n\\ \\ \\ \\ VAR\\\n\\\tGAR\n#comment\n"
            'two="bar\\\n    var\\\n\tgar"\n#comment\n'
            'tri="bar \\\n    var \\\n\tgar "\n')
    assert values(text) == {"one": "BAR    VAR\tGAR", "two": "bar    var\tgar",
                            "tri": "bar     var \tgar "}


def test_crlf_lines() -> None:
    assert values("A=1\r\nB = two words \r\n") == {"A": "1", "B": "two words"}


def test_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "carebot.env"
    path.write_bytes("A=1\nCAREBOT_DEALER_NAME=星辰\n".encode("gb18030"))
    with pytest.raises(envfile.EnvFileError, match="line 2 is not UTF-8"):
        envfile.read(path)
