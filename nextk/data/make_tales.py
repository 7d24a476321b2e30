"""How nextk/data/tales.txt was made: short fables from a small seeded grammar, one per line.

The text is generated (no source text, no download) and dedicated to the public domain (CC0). It has
what the text distinguishers look for: refrains repeated inside a fable, names copied from earlier in
the line, dialogue, and a skewed word frequency. Regenerate (byte-identical) with
`python nextk/data/make_tales.py > nextk/data/tales.txt`.
"""

import random

NAMES = (
    "Ada Bram Cora Dov Edda Finn Greta Hugo Ines Jory Kesi Lior Mira Nils Oona Pim Quill Rhea Sami Tove Ulla Vik Wren "
    "Yara Zev"
).split()
ANIMALS = "fox hare crow owl badger heron otter wren mole stag goat mouse lark bear wolf toad".split()
PLACES = [
    "the mill by the river",
    "the edge of the salt marsh",
    "a hill of white stones",
    "the old orchard",
    "the harbour town",
    "a valley of tall grass",
    "the frozen lake",
    "the lighthouse on the point",
    "a village of seven wells",
    "the market at the crossroads",
    "the forest of grey birches",
    "the island of gulls",
]
THINGS = [
    "a copper kettle",
    "a map drawn on bark",
    "a lantern with no oil",
    "a bag of barley",
    "a silver key",
    "a broken compass",
    "a loaf of rye bread",
    "a length of red rope",
    "a jar of honey",
    "a wooden flute",
    "a stone that hummed",
    "a coat with nine buttons",
]
WANTS = [
    "to cross the river before the flood",
    "to find the spring that never froze",
    "to count the stars over the marsh",
    "to learn the song of the bells",
    "to carry word to the far village",
    "to mend the bridge of planks",
    "to see the sea at least once",
    "to guard the winter stores",
    "to win the race at the harvest fair",
]
WEATHER = [
    "The wind turned cold.",
    "Rain came over the hills.",
    "The sun stood high and white.",
    "Fog sat on the water.",
    "Snow fell without a sound.",
    "The evening was long and gold.",
]
MORALS = [
    "A promise kept is a road that stays open.",
    "What is shared at night is not missed in the morning.",
    "The slow path is still a path.",
    "Ask the one who has walked it.",
    "Count twice, carry once.",
    "A small light is enough to find the door.",
    "Who listens to the river hears the flood before it comes.",
    "Bread broken in two feeds more than bread kept whole.",
]
SAYINGS = [
    "one step, then the next",
    "the river keeps its own time",
    "ask, then listen",
    "light the lamp before dark",
    "never carry what you can roll",
    "mend it while it is small",
]


def fable(r: random.Random) -> str:
    a, b = r.sample(NAMES, 2)
    beast_a, beast_b = r.sample(ANIMALS, 2)
    place, other = r.sample(PLACES, 2)
    thing = r.choice(THINGS)
    want = r.choice(WANTS)
    saying = r.choice(SAYINGS)
    s = [f"There was once a {beast_a} named {a} who lived near {place}."]
    s.append(f"{a} wanted {want}, but had only {thing}.")
    s.append(r.choice(WEATHER))
    s.append(f'One morning {a} met {b}, a {beast_b} from {other}, and said, "{saying.capitalize()}."')
    for _ in range(r.randint(1, 3)):
        s.append(
            r.choice(
                [
                    f"{b} laughed and asked what {thing} was good for.",
                    f'"{saying.capitalize()}," said {a} again, and walked on.',
                    f"So {a} and {b} went together toward {other}.",
                    f"At noon they rested, and {b} shared {r.choice(THINGS)}.",
                    f'{b} doubted, but {a} only said, "{saying}."',
                    f"The path was long, and {a} counted every step.",
                    r.choice(WEATHER),
                ]
            )
        )
    ending = r.choice(
        [
            f"In the end {a} used {thing} after all, and {b} never laughed at it again.",
            f"When they reached {other}, {b} knew that {a} had been right.",
            f"By evening {a} had done it, {want[3:]}, and {b} told the story for years.",
            f"It was {b} who finished it, but {a} who began it.",
        ]
    )
    s.append(ending)
    s.append(r.choice(MORALS))
    return " ".join(s)


def main(num: int = 240, seed: int = 2025) -> None:
    r = random.Random(seed)
    for _ in range(num):
        print(fable(r))


if __name__ == "__main__":
    main()
