"""The capstone's starting points: one echo server per model, runnable and graded as they are,
with what is left to do marked TODO. Programs, never imported: ``labkit.grading.start_from``
copies one to a file of the student's own (lesson 12).

Each is a whole program a student reads and changes alone, so what two of them share is written
in both on purpose: ``selectors_echo`` and ``selectors_files`` open with the same accept loop."""
