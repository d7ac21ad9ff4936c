import { createApp } from "./app.ts";

export { PoolCoordinator } from "../durable-objects/pool-coordinator";
export { MeshDirectory } from "../durable-objects/mesh-directory";
export { KeyStore } from "../durable-objects/key-store";
export { AuditLog } from "../durable-objects/audit-log";

const app = createApp();

export default app satisfies ExportedHandler<Env>;
