# The source notebook as it is: every solution cell keeps the instructor's answer.
# expect: all=full
