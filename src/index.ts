import { createApp } from "./app";

export { PoolCoordinator } from "../durable-objects/pool-coordinator";
export { MeshDirectory } from "../durable-objects/mesh-directory";

const app = createApp();

export default app satisfies ExportedHandler<Env>;
