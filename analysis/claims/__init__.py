"""The marketing claim check: a claim such as "70% of patients get
meaningful pain relief" tested against the program's own outcomes, with the
verdict, its evidence and the figures a substantiation memo prints."""
