from __future__ import annotations

import numpy as np

from generator.core.codes import decoders, qr


def gray(content: str) -> np.ndarray:
    return np.asarray(qr.render_control_image(qr.encode(content), 400).convert("L"))


def test_it_finds_the_wechat_model_files():
    folder = decoders.wechat_model_dir()
    assert folder is not None
    assert all((folder / name).stat().st_size > 1000 for name in decoders.WECHAT_FILES)


def test_every_reader_returns_utf8_text():
    content = "Grüße aus Köln — 東京"
    image = gray(content)
    for name, read in decoders.available_readers().items():
        assert read(image) == [content], name


def test_readers_return_nothing_for_a_blank_image():
    blank = np.full((300, 300), 255, np.uint8)
    for name, read in decoders.available_readers().items():
        assert read(blank) == [], name


def test_qreader_is_skipped_without_local_weights(tmp_path):
    assert decoders.qreader_reader(None) is None
    assert decoders.qreader_reader(str(tmp_path / "qrdet-s.pt")) is None  # missing file
    wrong_name = tmp_path / "detector.pt"
    wrong_name.write_bytes(b"x")
    assert decoders.qreader_reader(str(wrong_name)) is None
    assert set(decoders.available_readers(str(tmp_path / "qrdet-s.pt"))) == {"zxing", "wechat", "zbar"}


def test_qreader_is_skipped_when_the_package_is_missing(tmp_path):
    weights = tmp_path / "qrdet-s.pt"
    weights.write_bytes(b"not really weights")
    # qreader is not a requirement (it would pull a GPU torch and download its detector), so here it is
    # absent and the reader must be skipped rather than crash.
    assert decoders.importlib.util.find_spec("qreader") is None
    assert decoders.qreader_reader(str(weights)) is None


def test_plain_opencv_detector_never_votes():
    assert "opencv" not in decoders.available_readers()


def test_zxing_symbols_gives_the_corners_and_format_of_a_decoded_symbol():
    code = qr.encode("https://qart.example/r/AbC123")
    image = np.asarray(qr.render_control_image(code, 410, border=4).convert("L"))  # 10 px modules
    (symbol,) = decoders.zxing_symbols(image)
    assert symbol.text == code.content
    assert (symbol.version, symbol.ecc, symbol.mask) == (code.version, code.ecc, code.mask)
    assert symbol.corners == ((40, 40), (370, 40), (370, 370), (40, 370))


def test_zxing_symbols_locates_a_symbol_it_cannot_decode():
    code = qr.encode("https://qart.example/r/AbC123")
    image = np.asarray(qr.render_control_image(code, 410, border=4).convert("L")).copy()
    image[130:280, 130:280] = 255 - image[130:280, 130:280]  # the middle of the data, inverted
    assert decoders.read_zxing(image) == []
    (symbol,) = decoders.zxing_symbols(image)
    assert symbol.text is None and symbol.version == code.version and symbol.corners[0] == (40, 40)
    assert decoders.zxing_symbols(np.full((300, 300), 255, np.uint8)) == []
