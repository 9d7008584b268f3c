// Types of build-man.mjs, for the test that checks the manual page.
export function readmeSection(readme: string, heading: string, until?: RegExp): string;
export function renderManPage(texts: { readme: string; help: string; version: string; description: string }): string;
export function buildManPage(): string;
