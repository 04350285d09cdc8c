"""The capstone's starting points: one echo server per model, runnable and graded as they are,
with what is left to do marked TODO. Programs, never imported: ``labkit.grading.start_from``
copies one to a file of the student's own (lesson 12)."""
