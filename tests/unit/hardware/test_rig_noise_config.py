"""configs/rig_noise.yaml (physics-aware training for `make train-rig`) trains with the noise the simulated rig
of configs/hardware/rig.yaml applies: one set of numbers, checked here so the two files cannot drift apart."""

from pathlib import Path

import yaml

from lsi.physics.noise import NoiseModel

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_training_noise_is_the_simulated_rigs_detector_noise():
    train = yaml.safe_load((CONFIGS / "rig_noise.yaml").read_text())["model"]["init_args"]["noise"]
    rig = yaml.safe_load((CONFIGS / "hardware" / "rig.yaml").read_text())["sim"]["noise"]
    assert train, "rig_noise.yaml must set a noise model"
    for key, value in train.items():
        assert rig[key] == value, f"{key}: training {value} vs simulated rig {rig[key]}"
    # what is left out is an offset the reading normaliser's recentring removes, or an ADC step below the noise
    model = NoiseModel(**train)
    adc_step = rig["full_scale"] / (2 ** rig["adc_bits"] - 1)
    assert set(rig) - set(train) <= {"adc_bits", "full_scale", "dark_offset", "ambient", "differentiable"}
    assert adc_step / 12 ** 0.5 < model.read_noise
