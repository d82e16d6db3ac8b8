"""Per instruction id of ``verifiers/ifevalg_extra.py``: kwargs, responses that follow it, responses that
violate it (each violating one breaks the instruction in one way a model might)."""

PROMPT = "Write a short story about a cat that learns to fly."

CASES = {
    "copy:repeat_phrase": ({"phrase": "Time flies when having fun", "small_n": 2.0}, [
        "Time runs when having fun, and Time flies while having fun.",
        "time crawls when having fun\nTime flies when making fun!",
    ], [
        "Time runs when having fun.",  # once, not twice
        "Time runs when having fun. Time flies when having fun.",  # the second is unchanged
        "Time runs when having lots of fun. Time flies while having fun.",  # a word added
        "Time runs if having fun. Time flies while having fun.",  # two words changed in the first
        "Time runs when having fun. Time walks when having fun. Time flies when making fun.",  # three times
    ]),
    "copy:copy": ({"prompt_to_repeat": PROMPT}, [PROMPT, f"  {PROMPT.lower()}\n"],
                  ["Once upon a time a cat learned to fly.", f"Sure! {PROMPT}"]),
    "new:copy_span_idx": ({"prompt_to_repeat": PROMPT, "n_start": 8, "n_end": 19}, [
        "short story",  # characters 8..18, the end index excluded (IFEvalG's check)
        "short story ",
        "SHORT STORY",
    ], ["short stor", "a short story", "short story about"]),
    "detectable_format:sentence_hyphens": ({}, [
        "Cats nap.-Dogs bark.-Birds sing.", "Just one sentence here.",
    ], [
        "Cats nap. Dogs bark.",  # not joined by hyphens
        "Cats nap. -Dogs bark.",  # a space before the hyphen
        "Cats nap.- Dogs bark.",  # a space after it
        "It is a well-known fact.",  # a hyphen inside a sentence
        "Cats nap.--Dogs bark.",  # an empty part
    ]),
    "keywords:no_adjacent_consecutive": ({}, ["Cats eat good dinners.", "zebra apple zebra", "(apple) cat"], [
        "A big cat.",  # a -> b
        "Cats drink milk.",  # c -> d
        "(apple) banana",  # a -> b after the bracket
    ]),
    "detectable_format:square_brackets": ({}, ["[Hello] [world!]", "[one]\n[two]"], [
        "[Hello] world", "[Hello world]", "Hello",
    ]),
    "keywords:word_once": ({"keyword": "river"}, ["The River is wide.", "I swam in the river"], [
        "No water here.", "River after river.", "The rivers flow and the river runs.",
    ]),
    "keywords:word_count_different_numbers": ({"keyword": "moon", "frequency": 2, "relation": "at least"}, [
        "Moon and moon.", "The moon, the MOON, the moon.",
    ], ["The moon shines.", "The sun shines."]),
    "keywords:exclude_word_harder": ({"keyword": "paris", "instruction": "Describe a city."}, [
        "London is large.", "Parisian cafes are nice.",
    ], ["I love paris.", "Paris is large.", "I love Paris, truly.", "(paris)"]),
    "paragraphs:paragraphs": ({}, [
        "First part.\n***\nSecond part.", "First part. *** Second part.", "***\nFirst.\n***\nSecond.\n***",
    ], ["Only one part.", "One.\n***\nTwo.\n***\nThree.", "One.\n***\n***\nTwo."]),
    "paragraphs:paragraphs2": ({}, ["First part.\n\nSecond part.", "First\nstill first.\n\nSecond."], [
        "First part.\nSecond part.", "One.\n\nTwo.\n\nThree.", "One.\n\n\n\nTwo.",
    ]),
    "first_word:first_word_sent": ({"first_word": "Yes"}, ["Yes I can. yes you can! Yes we can?"], [
        "Yes I can. No you cannot.", "Yes, I can.", "I can.",
    ]),
    "first_word:first_word_answer": ({"first_word": ["hello"]}, ["Hello there.", "  hello\nworld"], [
        "Hi there, hello.", "Hello, there.", "hellothere",
    ]),
    "last_word:last_word_sent": ({"last_word": "today"}, ["I am here today. You are there today!"], [
        "I am here today. You are there.", "Today I am here.", "I am here today now.",
    ]),
    "last_word:last_word_answer": ({"last_word": "end"}, ["This is the end.", "The END!!!", "end"], [
        "The end is near.", "This is the ending.",
    ]),
    "detectable_format:bigram_wrapping": ({}, ["<<I am>> <<at home>>", "<<I am>> <<at home>> alone"], [
        "I am at home", "<<I am>> at home", "<<I>> <<am at>> <<home>>",
    ]),
    "copy:copying_simple": ({"prompt_to_repeat": PROMPT}, [PROMPT], [PROMPT + " The cat flew.", "Write a story."]),
    "copy:copying_multiple": ({"prompt_to_repeat": PROMPT, "N": 3}, [
        "******".join([PROMPT] * 3), f"{PROMPT}\n******\n{PROMPT}\n******\n{PROMPT}",
    ], ["******".join([PROMPT] * 2), "*****".join([PROMPT] * 3), "******".join([PROMPT, PROMPT, "Flying cat."])]),
    "punctuation:punctuation_dot": ({}, ["No dots here!", "Commas, yes; dots never"], [
        "One dot.", "A decimal 3.5", "Ellipsis...",
    ]),
    "punctuation:punctuation_exclamation": ({}, ["Calm words.", "Really?"], ["Wow!", "Hi!!"]),
    "count:lowercase_counting": ({"N": 2}, ["Only Capitalised Words Here.", "ONE two three"], [
        "one two three", "This is a test.",
    ]),
    "letters:letter_counting": ({"N": 5, "relation": "less than"}, ["Hi!", "1234 abcd"], [
        "Hello", "A b c d e",
    ]),
    "letters:letter_counting2": ({"letter": "Z", "let_frequency": 2, "let_relation": "at least"}, [
        "Zigzag.", "zz",
    ], ["Zero.", "No such letter."]),
    "count:counting_composition": ({"n_sent": 2, "n_words": 3}, [
        "Cats eat fish. Dogs chase cats.\n***\nBirds sing songs. Fish swim fast.\n***\nI love it. You don't care.",
        "Cats eat fish. Dogs chase cats. * * * Birds sing songs. Fish swim fast. * * * I love it. You do too.",
    ], [
        "Cats eat fish. Dogs chase cats.\n***\nBirds sing songs. Fish swim fast.",  # two paragraphs
        "Cats eat fish. Dogs chase cats.\n***\nBirds sing songs.\n***\nI love it. You do too.",  # one sentence
        "Cats eat fish. Dogs chase cats.\n***\nBirds sing songs. Fish swim very fast.\n***\nI love it. You do.",
    ]),
    "count:count_unique": ({}, ["Every word differs here. Truly unique.", "one two three"], [
        "The cat saw the dog.", "The cat saw The dog.", "no, No",
    ]),
    "count:count_increment_word": ({"keyword1": "sun", "keyword2": ["rain"]}, [
        "Sun then rain, more rain.", "The sun; RAIN and rain.",
    ], ["Sun and rain.", "Sun, sun, rain, rain.", "Rain rain rain and sun."]),
    "keywords:palindrome": ({}, ["Look at the racecar go.", "Anna said hi.", "Noon, then."], [
        "A cat sat.", "I am here.", "Nothing to see.",
    ]),
    "keywords:keyword_specific_position": ({"keyword": "blue", "n": 2, "m": 3}, [
        "The sky is grey. It is blue today.", "Hello. Well, it's blue!",
    ], ["The sky is blue. It is grey today.", "Blue sky.", "One. It is not blue."]),
    "keywords:start_end": ({}, ["Hello world hello", "Cats are nice cats"], [
        "Hello world hello.", "Hello world goodbye", "Hello", "\"Hello world hello\"",
    ]),
}
