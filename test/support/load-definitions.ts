import { loadFhirDefinitions } from '../../src/fhir/definitions.js';

loadFhirDefinitions();
