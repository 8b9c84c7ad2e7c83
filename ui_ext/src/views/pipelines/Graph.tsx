// The graph canvas both the builder and the run page draw: @xyflow/react with the step nodes, fitted to its box.
import { Background, Controls, ReactFlow, type Connection, type Edge, type NodeMouseHandler } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { nodeTypes, type StepNodeType } from "./StepNode";

const FIT = { padding: 0.12, minZoom: 0.45, maxZoom: 1.2 };

export function Graph({ nodes, edges, label, onNodeClick, onConnect, onEdgesDelete, editable = false }: {
  nodes: StepNodeType[];
  edges: Edge[];
  label: string;
  onNodeClick?: (id: string) => void;
  onConnect?: (connection: Connection) => void;
  onEdgesDelete?: (edges: Edge[]) => void;
  editable?: boolean;
}) {
  const layout = nodes.map((n) => `${n.id}@${Math.round(n.position.x)},${Math.round(n.position.y)}`).join(";");
  const click: NodeMouseHandler<StepNodeType> = (_, node) => onNodeClick?.(node.id);
  return (
    <div className="graph" role="region" aria-label={label}>
      <ReactFlow
        key={layout /* a new layout (a step added, a connection made) is fitted to the view afresh */}
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodeClick={click}
        onConnect={onConnect}
        onEdgesDelete={onEdgesDelete}
        edgesFocusable={editable}
        deleteKeyCode={editable ? ["Backspace", "Delete"] : null}
        nodesDraggable={false}
        nodesConnectable={editable}
        elementsSelectable
        fitView
        fitViewOptions={FIT}
        minZoom={0.2}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
