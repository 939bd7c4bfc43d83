"""``validate`` reports every problem of a signature directory at once (nuclei), never raising;
``load_signatures`` turns them into one SignatureError (a UsageError, exit 2)."""

from __future__ import annotations

import pytest

from scanner.errors import UsageError
from scanner.signatures import SignatureError, load_signatures, validate
from scanner.status import ExitStatus
from tests.signatures.helpers import problems_of, scratch_root, write

GOOD = """\
    id: {id}
    info: {{name: t, author: t}}
    source: [http]
    certainty: 0.8
    matchers:
      - {{type: regex, part: server, regex: ['{regex}']}}
    claims: {{vendor: {vendor}}}
    examples:
      - observation: {{source: http, fields: {{server: "{server}"}}}}
        expect: {{vendor: {vendor}}}
"""


def good(id: str, regex: str = "^App-webs/", vendor: str = "Hikvision", server: str = "App-webs/") -> str:
    return GOOD.format(id=id, regex=regex, vendor=vendor, server=server)


def test_broken_directory_reports_every_problem_at_once(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/Bad_ID.yaml", good("Bad_ID"))
    write(root, "devices/http/bad-regex.yaml", good("bad-regex", regex="(unclosed"))
    write(root, "devices/http/example-mismatch.yaml", """\
        id: example-mismatch
        info: {name: t, author: t}
        source: [http]
        certainty: 0.8
        matchers:
          - {type: regex, part: server, regex: ['^uc-httpd']}
        claims: {vendor: Xiongmai}
        extractors:
          - {type: regex, claim: firmware, part: server, regex: ['uc-httpd[ /](?P<firmware>\\S+)']}
        examples:
          - observation: {source: http, fields: {server: uc-httpd 1.0.0}}
            expect: {vendor: Xiongmai}
    """)
    write(root, "devices/http/unknown-vendor.yaml", good("unknown-vendor", regex="^Hikvisoin", vendor="Hikvisoin",
                                                         server="Hikvisoin"))
    # file order: a-greedy loads before z-victim, matches its example and claims another vendor
    write(root, "devices/http/a-greedy.yaml", good("a-greedy", regex="Webs", vendor="Dahua", server="Webs"))
    write(root, "devices/http/z-victim.yaml", good("z-victim", regex="^DNVRS-Webs", server="DNVRS-Webs"))

    problems = validate(root)
    text = "\n".join(problems)
    assert "devices/http/Bad_ID.yaml: id 'Bad_ID' is not kebab-case" in text
    assert "devices/http/bad-regex.yaml: matcher 1: regex '(unclosed' does not compile" in text
    assert "devices/http/example-mismatch.yaml: example 1: extracts extra claims {'firmware': '1.0.0'}" in text
    assert "devices/http/unknown-vendor.yaml: claims: vendor 'Hikvisoin' is not in identifiers/vendors.txt" in text
    assert "devices/http/unknown-vendor.yaml: example 1: expect: vendor 'Hikvisoin' is not in" in text
    assert ("devices/http/z-victim.yaml: example 1: stolen by earlier signature 'a-greedy' "
            "(vendor 'Dahua', expected 'Hikvision')") in text
    assert len(problems) == 6, text

    with pytest.raises(SignatureError) as caught:
        load_signatures(root)
    assert caught.value.problems == problems
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == ExitStatus.USAGE
    assert str(caught.value).startswith(f"6 signature problems in {root}:\n")


def test_a_later_signature_claiming_something_else_is_a_conflict(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/a-first.yaml", good("a-first", regex="^DNVRS-Webs", server="DNVRS-Webs"))
    write(root, "devices/http/b-later.yaml", good("b-later", regex="Webs", vendor="Dahua", server="Webs"))
    problems = validate(root)
    assert problems == ["devices/http/a-first.yaml: example 1: signature 'b-later' also matches and claims "
                        "vendor='Dahua' (expected 'Hikvision')"]


def test_clean_scratch_directory_loads(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/only-one.yaml", good("only-one"))
    assert validate(root) == []
    sigs = load_signatures(root)
    assert [s.id for s in sigs] == ["only-one"] and sigs.root == root
    assert len(sigs.version) == 12 and load_signatures(root).version == sigs.version
    write(root, "devices/http/only-one.yaml", good("only-one").replace("0.8", "0.7"))
    assert load_signatures(root).version != sigs.version


def test_file_level_problems(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/rtsp/misplaced.yaml", good("misplaced"))
    write(root, "devices/http/other-name.yaml", good("not-the-file-name"))
    write(root, "devices/http/dup.yaml", good("dup"))
    write(root, "devices/https/dup.yaml", good("dup").replace("source: [http]", "source: [http, https]"))
    write(root, "devices/http/not-yaml.yaml", "id: [unclosed\n")
    write(root, "devices/http/a-list.yaml", "- just\n- a list\n")
    write(root, "stray.yaml", good("stray"))
    write(root, "devices/http/old-ext.yml", good("old-ext"))
    text = "\n".join(validate(root))
    assert "devices/rtsp/misplaced.yaml: device signatures live in devices/<source>/<id>.yaml" in text
    assert "devices/http/other-name.yaml: file name must be the id: not-the-file-name.yaml" in text
    assert "devices/https/dup.yaml: duplicate id 'dup' (also devices/http/dup.yaml)" in text
    assert "devices/http/not-yaml.yaml: not valid YAML" in text
    assert "devices/http/a-list.yaml: must be a YAML mapping" in text
    assert "stray.yaml: signature files belong under devices/<source>/ or models/" in text
    assert "devices/http/old-ext.yml: use the .yaml extension" in text


def test_missing_directory_and_identifiers(tmp_path):
    assert validate(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a directory"]
    root = tmp_path / "bare"
    write(root, "devices/http/x.yaml", good("x"))
    problems = validate(root)
    assert any(p.startswith("identifiers/vendors.txt: cannot read") for p in problems)
    assert len(problems) == 4  # one per identifier file; the signature itself is fine


def test_empty_directory(tmp_path):
    root = scratch_root(tmp_path)
    assert validate(root) == ["no signature files under devices/ or models/"]


def test_counter_example_that_matches_and_example_that_does_not(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/counter.yaml", good("counter") + """\
    counter-examples:
      - observation: {source: http, fields: {server: App-webs/1.0}}
    """)
    write(root, "devices/http/miss.yaml", good("miss", server="Apache"))
    text = "\n".join(validate(root))
    assert "devices/http/counter.yaml: counter-example 1: matches (server~\"App-webs/\")" in text
    assert "devices/http/miss.yaml: example 1: does not match its own signature" in text


def test_example_values_checked_strictly(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/strict.yaml", """\
        id: strict
        info: {name: t, author: t}
        source: [http]
        certainty: 0.8
        matchers:
          - {type: word, part: server, words: [App-webs/]}
        claims: {vendor: Hikvision, is_camera: true}
        examples:
          - observation: {source: http, fields: {server: App-webs/}}
            expect: {vendor: Hikvision}
          - observation: {source: http, fields: {server: App-webs/1}}
            expect: {vendor: Dahua, is_camera: true}
          - observation: {source: http, fields: {server: App-webs/2}}
            expect: {vendor: Hikvision, is_camera: true, model: X}
    """)
    text = "\n".join(validate(root))
    assert "example 1: extracts extra claims {'is_camera': True}" in text
    assert "example 2: extracts vendor is 'Hikvision', expected 'Dahua'" in text
    assert "example 3: extracts missing claims {'model': 'X'}" in text


SCHEMA_CASES = {
    "unknown top-level key": ("matcher: []", "unknown key 'matcher'"),
    "unknown matcher type": ("matchers: [{type: dsl, part: server}]", "unknown matcher type 'dsl'"),
    "unknown part": ("matchers: [{type: word, part: sever, words: [x]}]", "unknown part 'sever'"),
    "family without key": ("matchers: [{type: word, part: 'sadp.', words: [x]}]", "needs a key after 'sadp'"),
    "key not valid for type": ("matchers: [{type: word, part: server, words: [x], value: y}]", "unknown key 'value'"),
    "empty words": ("matchers: [{type: word, part: server, words: []}]", "'words' must be a non-empty string"),
    "bad status": ("matchers: [{type: status, status: [99]}]", "status codes (100-599)"),
    "absolute xpath": ("matchers: [{type: xpath, xpath: ['/a/b']}]", "must be relative"),
    "bad xpath": ("matchers: [{type: xpath, xpath: ['a[']}]", "not a supported ElementPath expression"),
    "empty json step": ("matchers: [{type: json, json: ['a..b']}]", "has an empty step"),
    "value and regex": ("matchers: [{type: json, json: [a], value: x, regex: [y]}]", "either 'value' or 'regex'"),
    "bad condition": ("matchers-condition: xor", "'matchers-condition' must be 'and' or 'or'"),
    "all negative": ("matchers: [{type: word, part: server, words: [x], negative: true}]", "every matcher is negative"),
    "certainty range": ("certainty: 0.99", "certainty 0.99 is outside 0.1-0.95"),
    "certainty type": ("certainty: high", "non-numeric 'certainty'"),
    "unknown source": ("source: [telnet]", "unknown source 'telnet'"),
    "model mixed": ("source: [http, model]", "cannot be mixed"),
    "unknown claim": ("claims: {colour: red}", "claim 'colour' is not in identifiers/fields.txt"),
    "bool claim type": ("claims: {is_camera: 'yes'}", "claim 'is_camera' must be true or false"),
    "device type": ("claims: {device_type: toaster}", "device_type 'toaster' is not in identifiers/device_types.txt"),
    "face without basis": ("claims: {face_capable: true}", "claims face_capable without a basis"),
    "extractor bool claim": ("extractors: [{type: regex, claim: is_camera, part: server, regex: [x]}]",
                             "extractors capture text"),
    "extractor missing group": ("extractors: [{type: regex, claim: model, part: server, regex: ['(?P<m>x)'], "
                                "group: model}]", "group 'model' is not a named group"),
    "extractor group number": ("extractors: [{type: regex, claim: model, part: server, regex: ['(x)'], group: 2}]",
                               "group 2 does not exist"),
    "format placeholder": ("extractors: [{type: regex, claim: model, part: server, regex: ['(?P<a>x)'], "
                           "format: '{a} {b}'}]", "format uses b, not named groups"),
    "format attribute": ("extractors: [{type: regex, claim: model, part: server, regex: ['(?P<a>x)'], "
                         "format: '{a.b}'}]", "only {name} placeholders"),
    "format without regex": ("extractors: [{type: json, claim: model, json: [a], format: '{a}'}]",
                             "'group' and 'format' need a 'regex'"),
    "extractor claims a constant": ("extractors: [{type: regex, claim: vendor, part: server, regex: [x]}]",
                                    "claim 'vendor' is also a constant claim"),
    "too many examples": ("examples: " + str([{"observation": {"fields": {"server": f"x{i}"}}, "expect": {}}
                                              for i in range(21)]), "'examples' needs 1-20 entries, has 21"),
    "no examples": ("examples: []", "'examples' needs 1-20 entries, has 0"),
    "duplicate example": ("examples: [{observation: {fields: {server: a}}, expect: {}}, "
                          "{observation: {fields: {server: a}}, expect: {}}]", "example 2: duplicates an earlier one"),
    "example source": ("examples: [{observation: {source: rtsp, fields: {server: a}}, expect: {}}]",
                       "observation source 'rtsp' is not one of the signature's sources"),
    "example expect vendor": ("examples: [{observation: {fields: {server: a}}, expect: {vendor: Acme}}]",
                              "vendor 'Acme' is not in identifiers/vendors.txt"),
    "example status": ("examples: [{observation: {status: fine, fields: {server: a}}, expect: {}}]",
                       "'status' must be one of"),
    "missing info": ("info: null", "missing required mapping 'info'"),
}


@pytest.mark.parametrize("change,expected", SCHEMA_CASES.values(), ids=list(SCHEMA_CASES))
def test_schema_problems(change, expected):
    base = {
        "id": "x", "info": "{name: t, author: t}", "source": "[http]", "certainty": "0.5",
        "matchers": "[{type: word, part: server, words: [App]}]", "claims": "{vendor: Hikvision}",
        "examples": "[{observation: {fields: {server: App}}, expect: {vendor: Hikvision}}]",
    }
    key, _, value = change.partition(": ")
    if key in base:
        base[key] = value
        lines = [f"{k}: {v}" for k, v in base.items()]
    else:
        lines = [f"{k}: {v}" for k, v in base.items()] + [change]
    problems = problems_of("\n".join(lines))
    assert any(expected in p for p in problems), problems


def test_several_problems_in_one_file_are_all_reported():
    problems = problems_of("""\
        id: Not_Kebab
        info: {name: t}
        source: [http]
        certainty: 2
        matchers: [{type: regex, part: server, regex: ['(']}]
        claims: {vendor: Nobody}
        examples: []
    """)
    assert len(problems) == 6, problems


def test_validate_never_raises_on_hostile_files(tmp_path):
    root = scratch_root(tmp_path)
    write(root, "devices/http/binary.yaml", "")
    (root / "devices/http/binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    write(root, "devices/http/anchors.yaml", "a: &a [*a]\n")
    write(root, "devices/http/huge.yaml", "id: huge\n# " + "x" * 300_000 + "\n")
    problems = validate(root)
    assert any("binary.yaml: cannot read" in p for p in problems)
    assert any("huge.yaml: larger than" in p for p in problems)
    assert any("anchors.yaml" in p for p in problems)
