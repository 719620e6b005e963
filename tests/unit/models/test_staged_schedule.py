"""The staged recipe's schedule: phases as a function of the step, learning-rate factors, validation."""

from __future__ import annotations

import pytest

from lsi.models.staged import TrainingSchedule


def test_phases_and_lr_factors():
    s = TrainingSchedule(joint_steps=4, readout_steps=6, image_steps=2)
    assert s.total == 12
    assert [s.phase_at(i) for i in range(12)] == ["joint"] * 4 + ["readout"] * 6 + ["image"] * 2
    assert s.lr_factor("masks", 0) == 1.0 and s.lr_factor("masks", 4) == 0.0 and s.lr_factor("masks", 11) == 0.0
    assert s.lr_factor("encoder", 0) == 1.0 and 0 < s.lr_factor("encoder", 3) < 1
    assert s.lr_factor("encoder", 4) == 1.0  # the readout restarts the cosine
    assert s.lr_factor("encoder", 7) == pytest.approx(0.5)
    assert s.lr_factor("encoder", 10) == s.image_lr_factor


def test_invalid_schedules():
    with pytest.raises(ValueError, match="no steps"):
        TrainingSchedule(joint_steps=0, readout_steps=0, image_steps=0)
    with pytest.raises(ValueError, match=">= 0"):
        TrainingSchedule(joint_steps=-1)
