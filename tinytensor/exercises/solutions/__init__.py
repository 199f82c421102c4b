"""Reference solutions of the exercises. Each file is also the source of its stub: the lines between
`# ANSWER: <task>` and `# END` become `# TODO: <task>` and a `raise NotImplementedError` in the stub."""
