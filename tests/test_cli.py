"""The command line: bad input is one line on stderr, exit 2, and nothing is written."""

import pytest

from runners.cli import main


@pytest.mark.parametrize("argv,message", [
    (["--device", "tpu"], "unknown device profile 'tpu'; valid: cpu, gpu, jetson, rpi, auto"),
    (["--models", "wav2vec3"], "unknown model 'wav2vec3'"),
    (["--runtimes", "tflite"], "unknown runtime 'tflite'; valid: pytorch, onnxruntime"),
    (["--batch-sizes", "0"], "BATCH_SIZES=0 must be > 0"),
    (["--durations", "-2"], "DURATIONS=-2 must be > 0"),
    (["--providers", "CUDAExecutionProvider"], "CUDAExecutionProvider is not available in the installed onnxruntime"),
    (["--variants", "fp8"], "unknown variant 'fp8'"),
    (["--energy", "wattmeter"], "unknown energy sensor 'wattmeter'"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    results = tmp_path / "results"
    code = main(["--device", "cpu", "--results", str(results), "--no-progress"] + argv
                if "--device" not in argv else ["--results", str(results), "--no-progress"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
    assert not results.exists()
