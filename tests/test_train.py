import os
import pickle
import time
from pathlib import Path

import pytest
import torch
from sklearn import metrics
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from helpers import train


def blobs(n=400, seed=0):
    """Two well-separated Gaussian blobs in 2-D: any working training loop learns them."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=generator) + 4 * (y.unsqueeze(1).float() - 0.5)
    return x, y


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))


def test_tensor_loader_gives_the_batches_of_a_shuffled_dataloader():
    x, y = blobs(300)
    plain = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(3))
    fast = train.tensor_loader(x, y, 64, shuffle=True, generator=torch.Generator().manual_seed(3))
    assert len(plain) == len(fast) == 5
    for (xa, ya), (xb, yb) in zip(plain, fast):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(torch.cat([b for _, b in train.tensor_loader(x, y, 64)]), y)  # unshuffled: in order


def test_fit_learns_and_records_its_history(capsys):
    x, y = blobs()
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train.fit(model, train.tensor_loader(x, y, 32, shuffle=True), optimizer, epochs=3, val_loader=train.tensor_loader(x, y, 100))
    assert [len(history[k]) for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")] == [3] * 6
    assert len(history["step_loss"]) == 3 * 13
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.95
    assert capsys.readouterr().out.count("| validation loss") == 3


def test_fit_makes_the_same_updates_as_the_loop_written_out():
    x, y = blobs()

    def run(use_fit):
        model = small_model(seed=1)
        torch.manual_seed(5)  # dropout masks
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        loader = train.tensor_loader(x, y, 32, shuffle=True, generator=torch.Generator().manual_seed(2))
        if use_fit:
            train.fit(model, loader, optimizer, epochs=2, progress=True)
        else:
            for _ in range(2):
                model.train()
                for xb, yb in loader:
                    optimizer.zero_grad()
                    F.cross_entropy(model(xb), yb).backward()
                    optimizer.step()
        return model.state_dict()

    by_hand, by_fit = run(False), run(True)
    assert all(torch.equal(by_hand[k], by_fit[k]) for k in by_hand)


def test_fit_steps_the_scheduler_per_batch_or_per_epoch():
    x, y = blobs(64)
    for per, expected_steps in (("batch", 3 * 4), ("epoch", 3)):
        model = small_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
        train.fit(model, train.tensor_loader(x, y, 16), optimizer, epochs=3, scheduler=scheduler, scheduler_per=per, progress=False)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5**expected_steps)
    with pytest.raises(ValueError, match="scheduler_per"):
        train.fit(model, train.tensor_loader(x, y, 16), optimizer, epochs=1, scheduler=scheduler, scheduler_per="step")


def test_fit_stops_on_a_nan_loss_and_names_where():
    x, y = blobs(64)
    x[40] = float("nan")  # in the third batch of 16
    model = small_model()
    with pytest.raises(FloatingPointError, match="epoch 1, batch 2 \\(optimiser step 2\\)"):
        train.fit(model, train.tensor_loader(x, y, 16), torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False)


def test_fit_logs_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    x, y = blobs(64)
    model = small_model()
    with SummaryWriter(tmp_path) as writer:
        history = train.fit(model, train.tensor_loader(x, y, 16), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                            val_loader=train.tensor_loader(x, y, 64), writer=writer, progress=False)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss/train", "accuracy/train", "loss/val", "accuracy/val", "lr"}
    logged = [e.value for e in events.Scalars("loss/train")]
    assert logged == pytest.approx(history["train_loss"])
    assert events.Tags()["histograms"] == [], "histograms only when asked for"


def test_fit_logs_weight_histograms_before_training_and_after_each_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    x, y = blobs(64)
    model = small_model()
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    with SummaryWriter(tmp_path) as writer:
        train.fit(model, train.tensor_loader(x, y, 16), torch.optim.SGD(model.parameters(), lr=0.1), epochs=2,
                  writer=writer, histograms=True, progress=False)
    events = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    events.Reload()
    assert set(events.Tags()["histograms"]) == {f"weights/{name}" for name in initial}
    for name, p in model.named_parameters():
        logged = events.Histograms(f"weights/{name}")
        assert [e.step for e in logged] == [0, 1, 2]
        for event, values in ((logged[0], initial[name]), (logged[-1], p.detach())):
            h = event.histogram_value
            assert h.num == values.numel()
            assert h.min == pytest.approx(values.min().item()) and h.max == pytest.approx(values.max().item())
            assert h.sum == pytest.approx(values.sum().item(), abs=1e-5)


def test_fit_refuses_histograms_without_a_writer():
    x, y = blobs(16)
    model = small_model()
    with pytest.raises(ValueError, match="histograms=True needs a writer"):
        train.fit(model, train.tensor_loader(x, y, 16), torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, histograms=True, progress=False)


def test_predict_and_evaluate_use_eval_mode_and_restore_the_mode():
    x, y = blobs(100)
    model = small_model().train()
    logits, targets = train.predict(model, train.tensor_loader(x, y, 30))
    assert model.training, "predict restores training mode"
    model.eval()
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(logits, expected) and torch.equal(targets, y)
    result = train.evaluate(model, train.tensor_loader(x, y, 30))
    assert result["loss"] == pytest.approx(F.cross_entropy(expected, y).item())
    assert result["accuracy"] == pytest.approx((expected.argmax(1) == y).float().mean().item())


def test_metrics_equal_scikit_learn():
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (300,), generator=generator)
    predictions = torch.where(torch.rand(300, generator=generator) < 0.6, targets, torch.randint(0, 5, (300,), generator=generator))
    predictions[predictions == 4] = 3  # class 4 is never predicted: its precision is 0/0
    confusion = train.confusion_matrix(predictions, targets, 5)
    assert (confusion.numpy() == metrics.confusion_matrix(targets, predictions, labels=range(5))).all()
    ours = train.precision_recall_f1(confusion)
    p, r, f, _ = metrics.precision_recall_fscore_support(targets, predictions, labels=range(5), zero_division=0)
    for key, theirs in (("precision", p), ("recall", r), ("f1", f)):
        assert torch.allclose(ours[key], torch.from_numpy(theirs))
    assert train.accuracy(predictions, targets) == pytest.approx(metrics.accuracy_score(targets, predictions))


def test_a_checkpoint_round_trip_restores_model_optimiser_and_extras(tmp_path):
    x, y = blobs()
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train.fit(model, train.tensor_loader(x, y, 50), optimizer, epochs=1, progress=False)
    path = train.save_checkpoint(tmp_path / "sub" / "model.pt", model, optimizer, epoch=1, metrics={"accuracy": 0.9})
    fresh = small_model(seed=9)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.01)
    extras = train.load_checkpoint(path, fresh, fresh_optimizer)
    assert extras == {"epoch": 1, "metrics": {"accuracy": 0.9}}
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))
    assert torch.equal(fresh_optimizer.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = small_model()
    path = train.save_checkpoint(tmp_path / "model.pt", model, epoch=1)
    before = path.read_bytes()

    def crash(state, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(path, small_model(seed=3), epoch=2)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no half-written file left behind


def test_bad_checkpoints_are_named(tmp_path):
    model = small_model()
    with pytest.raises(FileNotFoundError, match="nothing.pt: no such checkpoint"):
        train.load_checkpoint(tmp_path / "nothing.pt", model)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt: not a readable checkpoint"):
        train.load_checkpoint(tmp_path / "garbage.pt", model)
    torch.save({"model": model.state_dict(), "extra": pickle.PickleError()}, tmp_path / "unsafe.pt")
    with pytest.raises(ValueError, match="unsafe.pt: holds a Python object of type pickle.PickleError") as refused:
        train.load_checkpoint(tmp_path / "unsafe.pt", model)
    assert "weights_only=False" not in str(refused.value), "never advise the unsafe load (torch's own message does)"
    train.save_checkpoint(tmp_path / "no-optimiser.pt", model)
    with pytest.raises(ValueError, match="holds no optimiser state"):
        train.load_checkpoint(tmp_path / "no-optimiser.pt", model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_a_checkpoint_stores_a_checksum_of_every_tensor_and_of_the_rest(tmp_path):
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = blobs(64)
    train.fit(model, train.tensor_loader(x, y, 32), optimizer, epochs=1, progress=False)
    path = train.save_checkpoint(tmp_path / "m.pt", model, optimizer, epoch=1, rng=torch.get_rng_state())
    record = torch.load(path, weights_only=True)[train.CHECKSUMS]
    assert record["version"] == train.FORMAT_VERSION
    assert {"/model/0.weight", "/optimizer/state/0/exp_avg", "/rng", "<everything else>"} <= set(record["sha256"])
    state = torch.load(path, weights_only=True)
    state["epoch"] = 2  # a changed extra, saved with the old checksums
    torch.save(state, path)
    with pytest.raises(train.CheckpointError, match="m.pt: damaged: <everything else> does not match"):
        train.load_checkpoint(path, small_model())
    with pytest.raises(ValueError, match="reserved"):
        train.save_checkpoint(tmp_path / "n.pt", model, course_checkpoint=1)


def test_an_older_checkpoint_without_checksums_still_loads_and_says_so(tmp_path, capsys):
    model = small_model()
    torch.save({"model": model.state_dict(), "optimizer": None, "epoch": 3}, tmp_path / "old.pt")
    fresh = small_model(seed=4)
    assert train.load_checkpoint(tmp_path / "old.pt", fresh) == {"epoch": 3}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    assert "without checksums: loaded unverified" in capsys.readouterr().out


def test_a_mismatched_optimiser_is_refused_before_the_model_changes(tmp_path):
    model = small_model()
    path = train.save_checkpoint(tmp_path / "m.pt", model, torch.optim.SGD(model.parameters(), lr=0.1))
    fresh = small_model(seed=4)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    groups = [{"params": list(fresh[0].parameters())}, {"params": list(fresh[3].parameters())}]
    with pytest.raises(train.CheckpointError, match=r"m.pt: its optimiser state has parameter groups of sizes \[4\], this optimiser \[2, 2\]"):
        train.load_checkpoint(path, fresh, torch.optim.SGD(groups, lr=0.1))
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


def test_stray_temporary_files_of_an_interrupted_save_are_removed_later(tmp_path, capsys):
    path = tmp_path / "model.pt"
    old_partial, old_tmp, running = path.with_name("model.pt.partial"), tmp_path / ".model.pt.abc123.tmp", tmp_path / ".model.pt.xyz789.tmp"
    for stray in (old_partial, old_tmp, running):
        stray.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    for stray in (old_partial, old_tmp):
        os.utime(stray, (two_hours_ago, two_hours_ago))
    train.save_checkpoint(path, small_model())
    assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, path.name], "a recent one may be another process's save"
    assert capsys.readouterr().out.count("left by an interrupted save") == 2


def test_check_writable_names_the_folder(tmp_path):
    assert train.check_writable(tmp_path / "new" / "deeper" / "m.pt") == tmp_path / "new" / "deeper"
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PermissionError, match=f"cannot save a checkpoint in {tmp_path / 'file' / 'sub'}: {tmp_path / 'file'} is a file"):
        train.check_writable(tmp_path / "file" / "sub" / "m.pt")
    with pytest.raises(PermissionError):
        train.save_checkpoint(tmp_path / "file" / "m.pt", small_model())


def test_evaluate_stops_on_a_non_finite_output_or_loss():
    x, y = blobs(40)
    model = small_model()
    with torch.no_grad():
        model[3].bias[0] = float("inf")
    with pytest.raises(FloatingPointError, match="not finite for 40 of 40 examples .* the weight '3.bias'"):
        train.evaluate(model, train.tensor_loader(x, y, 16))
    with pytest.raises(FloatingPointError, match="evaluate: the loss is nan"):
        train.evaluate(small_model(), train.tensor_loader(x, y, 16), loss_fn=lambda logits, targets: logits.sum() * float("nan"))


def test_fit_says_when_the_weights_broke_before_the_loss():
    x, y = blobs(64)
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1e39 if step == 0 else 1.0)
    x[:16] *= 1000  # the first batch: large gradients, at a learning rate of 1e38
    with pytest.raises(FloatingPointError, match=r"batch 1 \(optimiser step 1\).* the weight '0.weight' .* is already not finite"):
        train.fit(model, train.tensor_loader(x, y, 16), optimizer, epochs=1, scheduler=scheduler, progress=False)


def test_a_full_disk_during_a_save_names_the_folder_and_leaves_the_model(tmp_path, monkeypatch):
    """A disk that fills inside torch.save raises a RuntimeError naming no file; the course turns it into its own error."""
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def disk_full_save(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", disk_full_save)
    monkeypatch.setattr(train, "free_bytes", lambda folder: 1024)  # what the full disk reports after the failed write
    monkeypatch.setattr(train, "check_writable", lambda path, needed_bytes=None: Path(path).parent)
    with pytest.raises(train.DiskFullError, match=rf"the disk holding {tmp_path} is full: the checkpoint m.pt needs about 0\.\d+ MiB.*model in memory is unchanged"):
        train.save_checkpoint(tmp_path / "m.pt", model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and list(tmp_path.iterdir()) == []
