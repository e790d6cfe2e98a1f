"""The checks of lesson 05's exercises."""

from __future__ import annotations

from helpers.exercises.common import fail, require, titled, verdict


def _resnet18():
    from torchvision.models import resnet18

    return resnet18(weights=None)


@titled("Exercise 05.1 (freeze all but the last stage)")
def check_freeze_all_but_last_stage(exercise, freeze_all_but_last_stage) -> None:
    model = _resnet18()
    result = freeze_all_but_last_stage(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    expected = {name for name, _ in model.named_parameters() if name.startswith(("layer4.", "fc."))}
    if trainable == {name for name in expected if name.startswith("layer4.")}:
        fail(exercise, "the new head `fc` must stay trainable too")
    if trainable and all(name.startswith("fc.") for name in trainable):
        fail(exercise, "only the head is trainable: keep `layer4` trainable as well")
    require(trainable == expected, exercise, f"exactly the parameters whose names start with 'layer4.' or 'fc.' should have requires_grad=True; {len(trainable)} do, {len(expected)} should")
    count = sum(p.numel() for name, p in model.named_parameters() if name in expected)
    if result == sum(p.numel() for p in model.parameters()):
        fail(exercise, "that counts all parameters; count only those with requires_grad=True")
    verdict(result == count, exercise, "return the number of trainable parameters: numbers, not tensors, and only those that will train")


@titled("Exercise 05.2 (layer-wise learning rates)")
def check_layerwise_groups(exercise, layerwise_groups) -> None:
    model = _resnet18()
    head_lr, decay = 1e-3, 0.5
    groups = layerwise_groups(model, head_lr, decay)
    if not (isinstance(groups, list) and all(isinstance(g, dict) and "params" in g and "lr" in g for g in groups)):
        fail(exercise, "return a list of dicts, each with 'params' (a list of parameters) and 'lr'")
    owner = {}
    for index, group in enumerate(groups):
        for p in group["params"]:
            if id(p) in owner:
                fail(exercise, "a parameter appears in two groups; every parameter must be in exactly one")
            owner[id(p)] = group["lr"]
    names = dict(model.named_parameters())
    missing = [name for name, p in names.items() if id(p) not in owner]
    require(not missing, exercise, f"{len(missing)} parameters are in no group, for example {missing[0] if missing else ''}")
    depth = {"fc": 0, "layer4": 1, "layer3": 2, "layer2": 3, "layer1": 4, "conv1": 5, "bn1": 5}
    for name, p in names.items():
        expected = head_lr * decay ** depth[name.split(".")[0]]
        if abs(owner[id(p)] - expected) > 1e-15:
            fail(exercise, f"{name} has lr {owner[id(p)]:.3g}, expected {expected:.3g}: count how many stages {name.split('.')[0]} lies below the head")
    verdict(True, exercise, "")
