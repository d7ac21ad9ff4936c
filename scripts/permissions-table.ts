// Prints the permission matrix of src/security/permissions.ts as the Markdown table the README shows.
import { permissionTable } from "../src/security/permissions.ts";

console.log(permissionTable());
