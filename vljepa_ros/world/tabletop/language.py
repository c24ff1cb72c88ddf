"""The tabletop world's language: its vocabulary, action labels, caption paraphrases, questions and answers,
and the hard-negative candidate actions of inverse-dynamics items. No images here."""
from __future__ import annotations

import numpy as np


COLOURS: dict[str, tuple[int, int, int]] = {  # RGB, far apart in hue so a small ViT separates them at 64 px
    "red": (215, 35, 35),
    "green": (30, 170, 55),
    "blue": (35, 75, 225),
    "yellow": (240, 205, 25),
}
SHAPES = ("cube", "ball", "triangle")
DIRECTIONS: dict[str, tuple[float, float]] = {  # unit steps in table coordinates (x right, y down the image)
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "forward": (0.0, -1.0),
    "back": (0.0, 1.0),
}
OPPOSITE = {"left": "right", "right": "left", "forward": "back", "back": "forward"}
VERBS = ("reach", "pick", "move", "place", "push", "appear", "disappear")
DIRECTED_VERBS = ("move", "push")

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}



def object_phrase(colour: str, shape: str) -> str:
    return f"the {colour} {shape}"


def action_label(verb: str, colour: str, shape: str, direction: str | None = None) -> str:
    """Canonical class label of one action; the label bank is every value this can return."""
    obj = object_phrase(colour, shape)
    if verb == "reach":
        return f"reach for {obj}"
    if verb == "pick":
        return f"pick up {obj}"
    if verb == "move":
        return f"move {obj} {direction}"
    if verb == "place":
        return f"put down {obj}"
    if verb == "push":
        return f"push {obj} {direction}"
    if verb == "appear":
        return f"{obj} appears"
    if verb == "disappear":
        return f"{obj} disappears"
    raise ValueError(f"unknown verb {verb!r}; expected one of {VERBS}")


_DIRECTION_PHRASES = {
    "left": ("left", "to the left"),
    "right": ("right", "to the right"),
    "forward": ("forward", "away from the robot"),
    "back": ("back", "towards the robot"),
}


def action_captions(verb: str, colour: str, shape: str, direction: str | None = None) -> list[str]:
    """Paraphrases of one action; the first is the class label."""
    obj = object_phrase(colour, shape)
    label = action_label(verb, colour, shape, direction)
    if verb == "reach":
        others = [f"the robot reaches for {obj}", f"the gripper moves towards {obj}", f"the open gripper approaches {obj}"]
    elif verb == "pick":
        others = [f"the robot picks up {obj}", f"the gripper grasps {obj} and lifts it", f"lifting {obj} off the table"]
    elif verb == "move":
        short, long = _DIRECTION_PHRASES[direction]
        others = [f"the robot carries {obj} {long}", f"moving {obj} {short} while holding it", f"{obj} is carried {long}"]
    elif verb == "place":
        others = [f"the robot puts down {obj}", f"place {obj} on the table", f"the gripper lowers {obj} and lets go"]
    elif verb == "push":
        short, long = _DIRECTION_PHRASES[direction]
        others = [f"the robot pushes {obj} {long}", f"the gripper slides {obj} {short}", f"{obj} is pushed {long}"]
    elif verb == "appear":
        others = [f"{obj} appears on the table", f"a {colour} {shape} shows up", f"{obj} comes into view"]
    elif verb == "disappear":
        others = [f"{obj} vanishes from the table", f"the {colour} {shape} goes away", f"{obj} fades out of view"]
    else:
        raise ValueError(f"unknown verb {verb!r}")
    return [label, *others]


def all_action_keys() -> list[tuple[str, str, str, str | None]]:
    keys = []
    for verb in VERBS:
        for colour in COLOURS:
            for shape in SHAPES:
                for direction in DIRECTIONS if verb in DIRECTED_VERBS else (None,):
                    keys.append((verb, colour, shape, direction))
    return keys


def label_bank() -> list[str]:
    """Every class label the tabletop world can produce, in a fixed order."""
    return [action_label(*key) for key in all_action_keys()]


_VERB_GERUNDS = {
    "reach": "reaching for an object",
    "pick": "picking up an object",
    "move": "carrying an object",
    "place": "putting down an object",
    "push": "pushing an object",
    "appear": "staying still",
    "disappear": "staying still",
}
QUESTIONS = {
    "colour": "What colour is the object the robot is handling?",
    "shape": "What shape is the object the robot is handling?",
    "object": "Which object is the robot handling?",
    "doing": "What is the robot doing?",
    "moved_colour": "What colour is the object being moved?",
    "direction": "Which way is the object moving?",
    "holding": "Is the robot holding an object?",
    "count": "How many objects are there?",
    "appear_object": "Which object appears?",
    "appear_colour": "What colour is the object that appears?",
    "disappear_object": "Which object disappears?",
    "disappear_colour": "What colour is the object that disappears?",
}


def question_answers(verb: str, colour: str, shape: str, direction: str | None, object_count: int) -> list[tuple[str, str]]:
    """Questions whose answer holds during the whole segment (so any clip inside it can be asked them)."""
    pairs: list[tuple[str, str]] = [(QUESTIONS["doing"], _VERB_GERUNDS[verb])]
    if verb in ("appear", "disappear"):
        pairs += [
            (QUESTIONS[f"{verb}_object"], object_phrase(colour, shape)),
            (QUESTIONS[f"{verb}_colour"], colour),
            (QUESTIONS["holding"], "no"),
        ]
        return pairs
    pairs += [
        (QUESTIONS["colour"], colour),
        (QUESTIONS["shape"], shape),
        (QUESTIONS["object"], object_phrase(colour, shape)),
        (QUESTIONS["count"], NUMBER_WORDS.get(object_count, str(object_count))),
    ]
    if verb in DIRECTED_VERBS:
        pairs += [(QUESTIONS["moved_colour"], colour), (QUESTIONS["direction"], direction)]
    if verb in ("reach", "push"):
        pairs.append((QUESTIONS["holding"], "no"))
    if verb == "move":
        pairs.append((QUESTIONS["holding"], "yes"))
    return pairs


def deployment_banks() -> dict[str, list[str]]:
    """What a node needs to know about this world: class labels (zero-shot top-k), captions (the
    retrieval decoder's bank) and candidate actions (inverse dynamics). Saved with a model trained
    on the world (vljepa_ros.model.checkpoint.save_banks)."""
    captions = sorted({caption for key in all_action_keys() for caption in action_captions(*key)})
    return {"labels": label_bank(), "captions": captions, "actions": label_bank()}


def world_texts() -> list[str]:
    """Every caption, question and answer the world can produce (e.g. to build a word tokenizer)."""
    texts: set[str] = set()
    for key in all_action_keys():
        texts.update(action_captions(*key))
    texts.update(QUESTIONS.values())
    texts.update(_VERB_GERUNDS.values())
    texts.update(COLOURS)
    texts.update(SHAPES)
    texts.update(DIRECTIONS)
    texts.update(NUMBER_WORDS.values())
    texts.update({"yes", "no"})
    texts.update(object_phrase(c, s) for c in COLOURS for s in SHAPES)
    return sorted(texts)


def confusable_labels(verb: str, colour: str, shape: str, direction: str | None = None) -> list[str]:
    """Labels of the actions one is most easily mistaken for: the same action on the other shapes of its
    colour, and the action run backwards or another way (pick/put down, appear/disappear, the other
    directions, push/move). Colour is left out: at 64 px it is the attribute a model learns first.
    Training uses them as hard negatives of the action's caption examples."""
    if verb in DIRECTED_VERBS:
        other_verb = "push" if verb == "move" else "move"
        variants = [(verb, d) for d in DIRECTIONS if d != direction] + [(other_verb, direction)]
    else:
        variants = {"reach": [("pick", None)], "pick": [("place", None)], "place": [("pick", None)],
                    "appear": [("disappear", None)], "disappear": [("appear", None)]}[verb]
    labels = [action_label(verb, colour, other_shape, direction) for other_shape in SHAPES if other_shape != shape]
    labels += [action_label(variant_verb, colour, shape, variant_direction) for variant_verb, variant_direction in variants]
    return labels


def action_candidates(
    rng: np.random.Generator,
    verb: str,
    colour: str,
    shape: str,
    direction: str | None,
    scene_objects: list[tuple[str, str]],
) -> tuple[list[str], int]:
    """4 shuffled candidates: the true action plus hard distractors (same object other action,
    same action other colour, same action on another object of the scene or another shape)."""
    true_label = action_label(verb, colour, shape, direction)
    # 1) same object, a confusable other action (inverse actions, opposite directions)
    if verb in DIRECTED_VERBS:
        other_verb = "push" if verb == "move" else "move"
        confusable = [(verb, OPPOSITE[direction]), (verb, rng.choice([d for d in DIRECTIONS if d != direction])),
                      (other_verb, direction)]
    else:
        confusable = {
            "reach": [("pick", None), ("push", str(rng.choice(list(DIRECTIONS))))],
            "pick": [("place", None), ("reach", None)],
            "place": [("pick", None), ("move", str(rng.choice(list(DIRECTIONS))))],
            "appear": [("disappear", None)],
            "disappear": [("appear", None)],
        }[verb]
    alt_verb, alt_direction = confusable[int(rng.integers(len(confusable)))]
    distractors = [action_label(alt_verb, colour, shape, alt_direction)]
    # 2) same action, other colour (same shape)
    other_colour = str(rng.choice([c for c in COLOURS if c != colour]))
    distractors.append(action_label(verb, other_colour, shape, direction))
    # 3) same action, another object that is in the scene, else same colour other shape
    others = [o for o in scene_objects if o != (colour, shape) and o != (other_colour, shape)]
    if others:
        third_colour, third_shape = others[int(rng.integers(len(others)))]
    else:
        third_colour, third_shape = colour, str(rng.choice([s for s in SHAPES if s != shape]))
    distractors.append(action_label(verb, third_colour, third_shape, direction))
    candidates = [true_label, *distractors]
    assert len(set(candidates)) == 4, candidates
    order = rng.permutation(4)
    shuffled = [candidates[i] for i in order]
    return shuffled, shuffled.index(true_label)
