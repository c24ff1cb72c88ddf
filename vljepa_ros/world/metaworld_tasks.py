"""The Meta-World world's language: the MT50 tasks we render, their phases, labels, captions, questions and answers.

numpy-free and MuJoCo-free, so the main environment reads the world's texts without the rendering environment.
"""
from __future__ import annotations

from dataclasses import dataclass

ARM_SPEED = 0.25  # scale on the experts' motion command (see metaworld_render's docstring)
GRASP_PHASES = ("reach", "grasp", "move", "release")
CONTACT_PHASES = ("reach", "act", "retreat")


@dataclass(frozen=True)
class TaskSpec:
    """One Meta-World task and the words for it. Each phase text list starts with the class label."""

    env_name: str  # Meta-World name, e.g. "drawer-open-v3"
    kind: str  # "grasp" | "contact"
    task_label: str  # what the whole episode does, e.g. "open the drawer"
    object_phrase: str  # what the robot handles, e.g. "the drawer"
    phase_texts: dict[str, tuple[str, ...]]
    opposite: str | None = None  # env_name of the task that undoes this one (hard inverse-dynamics distractor)
    arm_speed: float = ARM_SPEED  # scale on the expert's motion command

    @property
    def phases(self) -> tuple[str, ...]:
        return GRASP_PHASES if self.kind == "grasp" else CONTACT_PHASES

    def label(self, phase: str) -> str:
        return self.phase_texts[phase][0]


def _reach_texts(target: str) -> tuple[str, ...]:
    # Opposite tasks (open / close the same thing) share the reach label: the reach looks the same in both.
    return (f"reach for {target}", f"the robot arm reaches for {target}", f"the gripper moves towards {target}",
            f"the arm approaches {target}")


def _retreat_texts(result: str) -> tuple[str, ...]:
    return (f"pull back from {result}", f"the robot arm moves away from {result}",
            f"the gripper withdraws from {result}", f"the arm returns home leaving {result}")


def _contact_task(env_name: str, task_label: str, object_phrase: str, target: str, act: tuple[str, ...],
                  result: str, opposite: str | None = None) -> TaskSpec:
    return TaskSpec(env_name, "contact", task_label, object_phrase,
                    {"reach": _reach_texts(target), "act": act, "retreat": _retreat_texts(result)}, opposite)


def _grasp_task(env_name: str, task_label: str, object_phrase: str, move: tuple[str, ...],
                arm_speed: float = ARM_SPEED) -> TaskSpec:
    obj = object_phrase
    return TaskSpec(env_name, "grasp", task_label, object_phrase, {
        "reach": _reach_texts(obj),
        "grasp": (f"grasp {obj}", f"the gripper closes around {obj}", f"the robot grabs {obj}",
                  f"the fingers close on {obj}"),
        "move": move,
        "release": (f"release {obj}", f"the gripper opens and lets go of {obj}", f"the robot lets go of {obj}",
                    f"letting go of {obj} and pulling back"),
    }, arm_speed=arm_speed)


TASKS: dict[str, TaskSpec] = {spec.env_name: spec for spec in [
    _contact_task("drawer-open-v3", "open the drawer", "the drawer", "the drawer handle",
                  ("pull the drawer open", "the robot pulls the green drawer open", "the drawer slides out towards the robot",
                   "opening the drawer"), "the open drawer", opposite="drawer-close-v3"),
    _contact_task("drawer-close-v3", "close the drawer", "the drawer", "the drawer handle",
                  ("push the drawer closed", "the robot pushes the green drawer shut", "the drawer slides back in",
                   "closing the drawer"), "the closed drawer", opposite="drawer-open-v3"),
    _contact_task("door-open-v3", "open the door", "the door", "the door handle",
                  ("swing the door open", "the robot pulls the black door open", "the door swings open",
                   "opening the door of the safe"), "the open door"),
    _contact_task("window-open-v3", "open the window", "the window", "the window handle",
                  ("slide the window open", "the robot slides the window open", "the window pane slides aside",
                   "opening the window"), "the open window", opposite="window-close-v3"),
    _contact_task("window-close-v3", "close the window", "the window", "the window handle",
                  ("slide the window closed", "the robot slides the window shut", "the window pane slides back",
                   "closing the window"), "the closed window", opposite="window-open-v3"),
    _contact_task("faucet-open-v3", "turn the faucet on", "the faucet", "the faucet handle",
                  ("turn the faucet handle on", "the robot turns the red faucet handle", "the faucet is turned on",
                   "rotating the faucet handle to open it"), "the open faucet", opposite="faucet-close-v3"),
    _contact_task("faucet-close-v3", "turn the faucet off", "the faucet", "the faucet handle",
                  ("turn the faucet handle off", "the robot turns the red faucet handle back", "the faucet is turned off",
                   "rotating the faucet handle to close it"), "the closed faucet", opposite="faucet-open-v3"),
    _contact_task("button-press-topdown-v3", "press the button", "the button", "the red button",
                  ("press the button down", "the robot pushes the red button down", "the gripper presses the button from above",
                   "pressing the button on the yellow box"), "the pressed button"),
    _contact_task("lever-pull-v3", "pull the lever up", "the lever", "the lever",
                  ("pull the lever up", "the robot lifts the grey lever", "the lever swings upwards",
                   "raising the lever"), "the raised lever"),
    _contact_task("dial-turn-v3", "turn the dial", "the dial", "the dial",
                  ("turn the dial", "the robot rotates the dial", "the gripper turns the knob of the dial",
                   "twisting the dial around"), "the turned dial"),
    _contact_task("door-lock-v3", "lock the door", "the door lock", "the door lock",
                  ("turn the lock down", "the robot pushes the lock lever down", "the door lock turns to locked",
                   "locking the door"), "the locked door", opposite="door-unlock-v3"),
    _contact_task("door-unlock-v3", "unlock the door", "the door lock", "the door lock",
                  ("turn the lock up", "the robot pushes the lock lever up", "the door lock turns to unlocked",
                   "unlocking the door"), "the unlocked door", opposite="door-lock-v3"),
    _grasp_task("pick-place-v3", "pick up the puck and place it at the goal", "the puck",
                ("move the puck to the goal", "the robot lifts the puck and carries it to the goal",
                 "the arm carries the red puck through the air", "moving the puck while holding it"),
                arm_speed=0.35),  # its expert fails more often at 0.25
    _grasp_task("bin-picking-v3", "move the block from the red bin to the blue bin", "the green block",
                ("carry the green block to the blue bin", "the robot lifts the green block out of the red bin",
                 "the arm carries the green block over to the blue bin", "moving the green block between the bins")),
]}

_PHASE_ANSWERS = {  # answer to "What is the robot doing?" (true over the whole phase)
    "reach": "reaching for an object", "grasp": "grasping an object", "move": "carrying an object",
    "release": "letting go of an object", "retreat": "pulling the arm back",
}
QUESTIONS = {
    "doing": "What is the robot doing?",
    "task": "Which task is the robot doing?",
    "object": "Which object is the robot handling?",
    "holding": "Is the robot holding an object?",
}


def label_bank(task_names: list[str] | None = None) -> list[str]:
    """Every phase label the given tasks (default: all) can produce, in a fixed order, without duplicates."""
    labels: list[str] = []
    for name in task_names or list(TASKS):
        spec = TASKS[name]
        labels += [spec.label(phase) for phase in spec.phases if spec.label(phase) not in labels]
    return labels


def phase_question_answers(spec: TaskSpec, phase: str) -> list[tuple[str, str]]:
    doing = spec.label("act") if phase == "act" else _PHASE_ANSWERS[phase]
    pairs = [(QUESTIONS["doing"], doing), (QUESTIONS["task"], spec.task_label), (QUESTIONS["object"], spec.object_phrase)]
    if phase in ("reach", "move", "retreat"):
        pairs.append((QUESTIONS["holding"], "yes" if phase == "move" else "no"))
    return pairs


def world_texts() -> list[str]:
    """Every caption, question and answer this world can produce (e.g. for a word tokenizer)."""
    texts: set[str] = set(QUESTIONS.values()) | set(_PHASE_ANSWERS.values()) | {"yes", "no"}
    for spec in TASKS.values():
        texts.add(spec.task_label)
        texts.add(spec.object_phrase)
        for phase_texts in spec.phase_texts.values():
            texts.update(phase_texts)
    return sorted(texts)


# ----------------------------------------------------------------------------------------------- episodes
