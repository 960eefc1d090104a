# grade_id: module_forward
# expect: module_forward=0 others=full
# mistakes: module_forward=name_missing
# A syntax error in part 6 leaves no Module; part 7's Lin(Module) must still be graded alone.
class Module():
    def __call__(self, *args)
        self.args = args
