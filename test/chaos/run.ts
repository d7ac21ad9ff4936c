// `npm run chaos`: the chaos run of issue 6 (see the header of chaos.ts).
import { main } from "./chaos.ts";

await main();
