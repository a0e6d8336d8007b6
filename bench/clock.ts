/** The benchmark's processes share the media plane's machine-wide clock (edge/media/mono-clock.ts). */
export { monoMs, monoUs32 } from '../edge/media/mono-clock.js';
