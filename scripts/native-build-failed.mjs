// Runs when `node-gyp rebuild` fails during `npm install`: the project still works on its
// pure TypeScript fallbacks, so the install must not fail — but it must say so, once, plainly.
console.warn('botedge: the native addon did not build; using the pure TypeScript fallbacks (slower, same results).');
