"""api_models.is_image_data_uri must say exactly what IMAGE_DATA_URI_PATTERN says (the schema publishes the
pattern; the chat route tests uploads with the fast function)."""

import base64
import random
import re

import pytest

from facevlm.serve import api_models as m

PATTERN = re.compile(m.IMAGE_DATA_URI_PATTERN)
HEAD = "data:image/png;base64,"


def _agrees(text: str) -> bool:
    return m.is_image_data_uri(text) == bool(PATTERN.fullmatch(text))


@pytest.mark.parametrize(
    "text",
    [
        m.EXAMPLE_IMAGE,
        HEAD + base64.b64encode(b"123456789").decode(),  # 9 bytes: the shortest accepted
        HEAD + base64.b64encode(b"12345678").decode(),  # 8 bytes: refused
        HEAD + base64.b64encode(b"1234567890").decode(),  # "==" padding
        HEAD + base64.b64encode(b"12345678901").decode(),  # "=" padding
        HEAD + "AAAAAAAAAA==",  # 2 full quads + padding
        HEAD + "AAAAAAAAAAAA===",
        HEAD + "AAAAAAAA=AAAAAAA",  # padding inside
        HEAD + "AAAAAAAAAAAAA",  # not a multiple of 4
        HEAD + "AAAAAAAAAAAA\n",
        HEAD + "AAAA AAAAAAA",
        HEAD + "AAAAAAAAAAAA-_==",  # URL-safe alphabet: refused
        "data:image/jpg;base64,AAAAAAAAAAAA",
        "data:image/svg;base64,AAAAAAAAAAAA",
        "DATA:image/png;base64,AAAAAAAAAAAA",
        "data:image/png;charset=utf8;base64,AAAAAAAAAAAA",
        " " + HEAD + "AAAAAAAAAAAA",
        HEAD,
        "",
    ],
)
def test_edge_cases_agree_with_the_pattern(text: str) -> None:
    assert _agrees(text)


def test_random_payloads_agree_with_the_pattern() -> None:
    rng = random.Random(0)
    alphabet = "AZaz09+/=-_ \n"
    accepted = 0
    for _ in range(5000):
        payload = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        if rng.random() < 0.5:  # half of them valid base64 of 0-19 bytes
            payload = base64.b64encode(rng.randbytes(rng.randrange(0, 20))).decode()
        text = HEAD + payload
        assert _agrees(text), text
        accepted += m.is_image_data_uri(text)
    assert 1000 < accepted < 4000  # both answers are exercised
