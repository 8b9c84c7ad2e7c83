import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { exchangeLoginToken } from "./api";
import "./styles.css";

void exchangeLoginToken().finally(() =>
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <App />
    </StrictMode>,
  ),
);
