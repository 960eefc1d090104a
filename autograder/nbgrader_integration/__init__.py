"""The kit's nbgrader integration, one class per module as in nbgrader's own preprocessors/: the only code that imports nbgrader."""
# Nothing is imported here: nbgrader_config.py names each class by its module
# (autograder.nbgrader_integration.engine_grades.EngineGrades), so a verb that needs one helper
# (collect: student names) does not pay for nbgrader's converters.
