"""Language-model backends behind the `LanguageModel` interface (`llm=<name>`)."""
