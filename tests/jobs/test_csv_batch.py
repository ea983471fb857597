"""The batch CSV validator: a pure function, so no services are needed."""
from __future__ import annotations

import pytest

from jobs.csv_batch import MAX_CSV_BYTES, MAX_CSV_ROWS, MAX_PROBLEMS, CsvProblem, CsvRejected, parse_batch_csv
from jobs.validation import DEFAULT_PAUSE_MS, default_length_ms, line_seed

VOICES = {"alice", "bob"}


def parse(text: str | bytes, **limits):
    data = text.encode() if isinstance(text, str) else text
    max_text_chars = limits.pop("max_text_chars", 40)
    return parse_batch_csv(
        data, max_text_chars=max_text_chars, voice_exists=VOICES.__contains__, **limits
    )


def problems(text: str | bytes, **limits) -> list[tuple]:
    with pytest.raises(CsvRejected) as caught:
        parse(text, **limits)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def where(text: str | bytes, **limits) -> list[tuple]:
    return [(line, field) for line, field, _ in problems(text, **limits)]


def test_good_file_with_bom_crlf_quotes_and_a_script_between_independent_rows():
    data = (
        "\ufefftext , speaker,voice,script,id,pause_ms,temperature,seed\r\n"
        '"Hello, world.",1,alice,,greeting,,0.5,7\r\n'
        '"Line one,\r\nstill line one",0,,talk,,250,,11\r\n'  # lines 3-4
        "\r\n"  # a blank line, skipped
        'Alone,2,,,,,,\r\n'  # line 6
        '"She said ""hi"".",1,bob,talk,talk.wav,,,\r\n'  # line 7, the script's second line
        ',,,,,,,\r\n'  # a row of empty cells, skipped
        "Last,0,,,last.WAV,,,\r\n"  # line 9
    ).encode()
    plan = parse(data)

    assert plan.rows == 5
    assert [(j.output_name, j.script_id, j.row_lines) for j in plan.jobs] == [
        ("greeting.wav", None, (2,)),
        ("talk.wav", "talk", (3, 7)),
        ("row-00006.wav", None, (6,)),
        ("last.WAV", None, (9,)),
    ]
    greeting, talk, alone, _ = (job.request for job in plan.jobs)
    assert not greeting.is_script
    assert (greeting.temperature, greeting.seed, greeting.metadata) == (0.5, 7, None)
    (line,) = greeting.lines
    assert (line.text, line.speaker, line.voice, line.pause_ms) == ("Hello, world.", 1, "alice", 0)
    assert line.max_audio_length_ms == default_length_ms("Hello, world.")
    assert talk.is_script and talk.seed == 11
    assert [(l.text, l.speaker, l.voice, l.pause_ms) for l in talk.lines] == [
        ("Line one,\r\nstill line one", 0, None, 250),
        ('She said "hi".', 1, "bob", DEFAULT_PAUSE_MS),
    ]
    assert [l.seed for l in talk.lines] == [line_seed(11, 0), line_seed(11, 1)]
    assert (alone.lines[0].text, alone.lines[0].speaker, alone.temperature) == ("Alone", 2, 0.9)


def test_every_bad_row_and_field_is_reported_at_once_with_its_line():
    data = (
        "text,speaker,voice,script,id,max_audio_length_ms,temperature,topk,seed,pause_ms\n"
        "Fine,0,,,,,,,,\n"  # 2
        '"two\nlines",1001,carol,,,,,,,\n'  # 3-4: speaker, voice
        ",x,,,,,,,,\n"  # 5: text, speaker
        "Ok,0,,,a/b,79,0,1.5,-1,\n"  # 6: id, max_audio_length_ms, temperature, topk, seed
        "Ok,0,,,,,nan,2052,,5\n"  # 7: temperature, topk, pause_ms without a script
        "Ok,,,s,,,,,,10001\n"  # 8: speaker required in a script, pause_ms
        f"{'y' * 41},0,,,,,,,,\n"  # 9: text too long
        "Ok,0,,,,,,,,,extra\n"  # 10: too many cells
    )
    assert problems(data) == [
        (3, "speaker", "must be between 0 and 1000"),
        (3, "voice", "no voice named 'carol'; upload it with POST /v1/voices"),
        (5, "text", "must not be empty"),
        (5, "speaker", "must be an integer"),
        (6, "id", "may contain only letters, digits, '.', '_' and '-'"),
        (6, "max_audio_length_ms", "must be between 80 and 90000"),
        (6, "temperature", "must be above 0 (use topk=1 for greedy decoding)"),
        (6, "topk", "must be an integer"),
        (6, "seed", "must be between 0 and 2147483647"),
        (7, "temperature", "must be a number"),
        (7, "topk", "must be between 1 and 2051"),
        (7, "pause_ms", "applies only to rows with a script"),
        (8, "speaker", "is required"),
        (8, "pause_ms", "must be between 0 and 10000"),
        (9, "text", "must be at most 40 characters"),
        (10, None, "has 11 cells but the header has 10"),
    ]


def test_cells_are_read_as_the_json_api_would_receive_them():
    data = (
        "text,speaker,temperature,topk,seed\n"
        "A, 7 ,7e-1,+3,0042\n"
        "B,1.0,.5,1e2,\n"
        "C,,inf,99999999999999999999999,\n"
    )
    assert problems(data) == [
        (3, "speaker", "must be an integer"),
        (3, "topk", "must be an integer"),
        (4, "temperature", "must be a number"),
        (4, "topk", "must be between 1 and 2051"),
    ]
    plan = parse(data.split("B,")[0])
    request = plan.jobs[0].request
    assert (request.lines[0].speaker, request.temperature) == (7, 0.7)
    assert (request.topk, request.seed) == (3, 42)


def test_fewer_cells_than_the_header_are_empty_cells():
    plan = parse("text,speaker,id\nShort\n")
    (job,) = plan.jobs
    assert (job.output_name, job.request.lines[0].speaker) == ("row-00002.wav", 0)


def test_header_problems_are_all_reported_and_stop_the_check():
    assert problems("Text, voice ,voice,,colour\n,,,,\n") == [
        (1, "Text", "unknown column; did you mean 'text'?"),
        (1, "voice", "duplicated column"),
        (1, None, "column 4 has no name"),
        (1, "colour", "unknown column"),
        (1, "text", "required column is missing"),
    ]


def test_id_and_filename_columns_are_exclusive():
    assert problems("text,id,filename\nA,a,b\n") == [
        (1, "filename", "use either the id or the filename column")
    ]


def test_output_names_are_checked_and_unique_ignoring_case_and_suffix():
    data = (
        "filename,text\n"
        "take,A\n"  # 2
        "TAKE.wav,B\n"  # 3: the same file as line 2
        "../up,C\n"  # 4
        ".hidden,D\n"  # 5
        f"{'n' * 101},E\n"  # 6
        "row-00008,F\n"  # 7: the default name of line 8
        ",G\n"  # 8
    )
    assert problems(data) == [
        (3, "filename", "duplicates the output name on line 2"),
        (4, "filename", "may contain only letters, digits, '.', '_' and '-'"),
        (5, "filename", "must not start with '.' or contain '..'"),
        (6, "filename", "must be at most 100 characters"),
        (7, "filename", "is the default output name of line 8"),
    ]


def test_script_rows_share_name_and_job_values_and_have_a_size_limit():
    data = (
        "text,speaker,script,id,temperature,seed\n"
        "A,0,s,,0.5,\n"  # 2
        "B,1,s,conv,0.50,3\n"  # 3: the name comes from any row; the same temperature
        "C,0,s,CONV.wav,0.6,4\n"  # 4: the same name; temperature and seed differ
        "D,1,s,other,,\n"  # 5: the fourth row of a 4-row script is fine, its name is not
        "E,0,s,,,\n"  # 6: one too many
        "F,0,t,conv,,\n"  # 7: another script cannot have the same name
    )
    assert problems(data, max_script_lines=4) == [
        (4, "temperature", "differs from line 2: a script has one value (or leave it empty)"),
        (4, "seed", "differs from line 3: a script has one value (or leave it empty)"),
        (5, "id", "differs from line 3: a script has one value (or leave it empty)"),
        (6, "script", "a script may have at most 4 rows"),
        (7, "id", "duplicates the output name on line 3"),
    ]


def test_a_script_takes_the_job_values_of_any_of_its_rows():
    plan = parse("text,speaker,script,topk\nA,0,s,\nB,1,s,5\nC,0,,\n")
    assert [(j.script_id, j.row_lines, j.request.topk) for j in plan.jobs] == [
        ("s", (2, 3), 5),
        (None, (4,), 50),
    ]


def test_not_utf8_is_reported_at_its_line():
    assert problems(b"text\nok\ncaf\xe9\n") == [(3, None, "is not valid UTF-8")]


def test_an_unclosed_quote_is_reported_where_its_record_starts():
    assert where('text\nA\n"B\nC\n') == [(3, None)]


def test_too_many_rows_or_bytes():
    assert problems("text\nA\n\nB\nC\n", max_rows=2) == [
        (4, None, "the file has more than 2 rows")  # the blank line counts
    ]
    assert parse("text\nA\nB\n", max_rows=2).rows == 2
    assert problems("text\nAB\n", max_bytes=7) == [(None, None, "the file is larger than 7 bytes")]
    assert parse("text\nAB\n", max_bytes=8).rows == 1


@pytest.mark.parametrize(
    "data, message",
    [(b"", "the file is empty"), (b"\xef\xbb\xbf\r\n \n", "the file is empty"),
     (b"text,speaker\r\n\r\n", "the file has no data rows")],
)
def test_empty_file_or_header_only(data, message):
    assert problems(data) == [(None, None, message)]


def test_problems_are_capped_with_a_count_of_the_rest():
    assert problems("text\n\n\n\n", max_problems=1) == [(None, None, "the file has no data rows")]
    assert problems("text,speaker\n" + "A,x\n" * 5, max_problems=3) == [
        (2, "speaker", "must be an integer"),
        (3, "speaker", "must be an integer"),
        (4, "speaker", "must be an integer"),
        (None, None, "and 2 more problems"),
    ]


def test_rows_with_too_many_cells_count_towards_the_row_limit():
    assert problems("text\n" + "a,b\n" * 5, max_rows=3) == [
        (2, None, "has 2 cells but the header has 1"),
        (3, None, "has 2 cells but the header has 1"),
        (4, None, "has 2 cells but the header has 1"),
        (5, None, "the file has more than 3 rows"),
    ]


def test_the_cap_keeps_the_first_problems_by_line_whenever_they_are_found():
    # Line 2's name clashes with line 5's default name: found after the rows' own problems.
    text = "text,speaker,id\nA,0,row-00005\nA,x,\nA,y,\nA,0,\n"
    assert problems(text, max_problems=2) == [
        (2, "id", "is the default output name of line 5"),
        (3, "speaker", "must be an integer"),
        (None, None, "and 1 more problems"),
    ]


def test_a_full_size_file_repeating_a_bad_row_is_refused_in_bounded_memory():
    import tracemalloc

    data = b"text\n" + b"a,b\n" * (MAX_CSV_BYTES // 4 - 2)
    tracemalloc.start()
    try:
        with pytest.raises(CsvRejected) as caught:
            parse_batch_csv(data, max_text_chars=40, voice_exists=VOICES.__contains__)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    listed = caught.value.problems
    assert len(listed) == MAX_PROBLEMS + 1
    assert listed[-1].message == f"and {MAX_CSV_ROWS + 1 - MAX_PROBLEMS} more problems"
    assert peak < 2 * len(data)  # was 60 times the file: every problem of 2.6 million rows kept


def test_each_voice_is_looked_up_once():
    asked = []

    def voice_exists(name):
        asked.append(name)
        return name == "alice"

    data = b"text,voice\nA,alice\nB,zed\nC,alice\nD,zed\nE,\n"
    with pytest.raises(CsvRejected) as caught:
        parse_batch_csv(data, max_text_chars=10, voice_exists=voice_exists)
    assert caught.value.problems == [
        CsvProblem(3, "voice", "no voice named 'zed'; upload it with POST /v1/voices"),
        CsvProblem(5, "voice", "no voice named 'zed'; upload it with POST /v1/voices"),
    ]
    assert asked == ["alice", "zed"]


def test_the_format_column_sets_each_jobs_format_and_output_extension():
    data = (
        "text,speaker,script,filename,format\n"
        "A,0,,a,mp3\n"  # 2: the extension is appended
        "B,0,,b.wav,flac\n"  # 3: an audio extension is replaced
        "C,0,,C.MP3,mp3\n"  # 4: the format's own extension is kept as given
        "D,0,,,opus\n"  # 5: the default name takes the format's extension
        "E,0,s,talk,\n"  # 6: a script's format may come from any of its rows
        "F,1,s,talk.pcm,pcm\n"  # 7
        "G,0,,,\n"  # 8: wav by default
    )
    plan = parse(data)
    assert [(job.output_name, job.request.format) for job in plan.jobs] == [
        ("a.mp3", "mp3"), ("b.flac", "flac"), ("C.MP3", "mp3"), ("row-00005.opus", "opus"),
        ("talk.pcm", "pcm"), ("row-00008.wav", "wav"),
    ]


def test_a_bad_format_and_names_that_collide_after_their_extension_are_reported():
    data = (
        "text,speaker,script,id,format\n"
        "A,0,,x,aac\n"  # 2
        "B,0,,same,mp3\n"  # 3
        "C,0,,same.wav,mp3\n"  # 4: also same.mp3
        "D,0,s,,mp3\n"  # 5
        "E,1,s,,wav\n"  # 6: a script has one format
    )
    assert problems(data) == [
        (2, "format", "must be one of wav, flac, mp3, opus, pcm"),
        (4, "id", "duplicates the output name on line 3"),
        (6, "format", "differs from line 5: a script has one value (or leave it empty)"),
    ]
