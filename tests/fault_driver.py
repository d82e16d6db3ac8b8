"""Run one ``mixmerge`` command with a fault injected (for tests/test_fault_injection.py).

``python tests/fault_driver.py FAULT -- ARGS...`` where FAULT is JSON:
``{"kill_at_step": N}``: SIGKILL this process at the end of training step N (a real kill: nothing is flushed);
``{"kill_on_open": [TEXT, N]}``: SIGKILL it when it opens, for writing, the N-th file whose path contains TEXT;
``{}``: no fault (the reference run, through the same entry point).
"""
import json
import os
import signal
import sys


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at_step(step: int) -> None:
    import transformers.trainer as trainer_module
    from transformers import TrainerCallback

    class KillAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                _kill()

    trainer_module.DEFAULT_CALLBACKS.append(KillAtStep)


def kill_on_open(text: str, nth: int) -> None:
    seen = [0]

    def hook(event, args):
        if event != "open" or text not in str(args[0]):
            return
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writing:
            seen[0] += 1
            if seen[0] >= nth:
                _kill()

    sys.addaudithook(hook)


def main() -> None:
    fault = json.loads(sys.argv[1])
    assert sys.argv[2] == "--"
    if "kill_at_step" in fault:
        kill_at_step(fault["kill_at_step"])
    if "kill_on_open" in fault:
        kill_on_open(*fault["kill_on_open"])
    from mixmerge.cli import main as cli

    cli(sys.argv[3:])


if __name__ == "__main__":
    main()
