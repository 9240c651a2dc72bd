using System.Globalization;
using System.Runtime.InteropServices;
using MoeSharp.Tensors;

namespace MoeSharp.Layer;

/// <summary>
/// Loads and saves a <see cref="MoeLayer"/>'s weights as <c>.safetensors</c>, in two naming schemes
/// (docs/weights.md):
/// <list type="bullet">
/// <item>MoeSharp/golden names: <c>router.gate.weight</c> [E, D], <c>router.expert_bias</c> [E] (optional),
/// <c>experts.w1</c>/<c>experts.w3</c> [E, H, D], <c>experts.w2</c> [E, D, H] (all E experts; a rank keeps
/// its own slice), <c>shared.w1</c>/<c>shared.w3</c> [Hs, D], <c>shared.w2</c> [D, Hs].</item>
/// <item>Hugging Face per-expert names under an optional prefix such as <c>model.layers.0.mlp.</c>:
/// <c>{prefix}gate.weight</c> → router gate [E, D];
/// <c>{prefix}experts.{i}.gate_proj.weight</c> [H, D] → <c>w1[i]</c>;
/// <c>{prefix}experts.{i}.up_proj.weight</c> [H, D] → <c>w3[i]</c>;
/// <c>{prefix}experts.{i}.down_proj.weight</c> [D, H] → <c>w2[i]</c>;
/// <c>{prefix}shared_expert.gate_proj/up_proj/down_proj.weight</c> → shared w1/w3/w2;
/// <c>{prefix}gate.e_score_correction_bias</c> [E] (optional) → expert bias.</item>
/// </list>
/// F32 and BF16 tensors are accepted (BF16 is widened exactly). A missing or mis-shaped tensor throws
/// <see cref="InvalidDataException"/> naming the tensor, the expected and actual shape and the file;
/// nothing is written to the layer unless every tensor checks out.
/// </summary>
public static class MoeLayerCheckpoint
{
    /// <summary>Router gate: [E, D].</summary>
    public const string GateWeight = "router.gate.weight";

    /// <summary>Load-balancing bias: [E].</summary>
    public const string ExpertBias = "router.expert_bias";

    /// <summary>Experts' gate projections: [E, H, D].</summary>
    public const string ExpertsW1 = "experts.w1";

    /// <summary>Experts' down projections: [E, D, H].</summary>
    public const string ExpertsW2 = "experts.w2";

    /// <summary>Experts' up projections: [E, H, D].</summary>
    public const string ExpertsW3 = "experts.w3";

    /// <summary>Shared expert's gate projection: [Hs, D].</summary>
    public const string SharedW1 = "shared.w1";

    /// <summary>Shared expert's down projection: [D, Hs].</summary>
    public const string SharedW2 = "shared.w2";

    /// <summary>Shared expert's up projection: [Hs, D].</summary>
    public const string SharedW3 = "shared.w3";

    /// <summary>Shared expert's sigmoid gate (Qwen2-MoE's <c>shared_expert_gate</c>): [1, D].</summary>
    public const string SharedGate = "shared.gate.weight";

    /// <summary>Loads golden-named weights from a file (see the class remarks). Every rank reads the file and keeps its
    /// experts.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or mis-shaped, or the file is malformed.</exception>
    public static void Load(MoeLayer layer, string path)
    {
        ArgumentNullException.ThrowIfNull(layer);
        Load(layer, SafetensorsFile.Read(path));
    }

    /// <summary>Loads golden-named weights (see the class remarks). <c>router.expert_bias</c> is read when the layer
    /// balances load and the file has it.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or mis-shaped.</exception>
    public static void Load(MoeLayer layer, SafetensorsContent file)
    {
        ArgumentNullException.ThrowIfNull(file);
        Load(layer, file, file.SourceName);
    }

    /// <summary>Loads golden-named weights from name/tensor pairs (e.g. a <see cref="StateDict"/>);
    /// <paramref name="sourceName"/> names them in errors.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or mis-shaped.</exception>
    public static void Load(
        MoeLayer layer,
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        string sourceName = "<memory>"
    ) => Load(layer, tensors, sourceName, localExperts: false);

    /// <summary>
    /// <see cref="Load(MoeLayer, IEnumerable{KeyValuePair{string, Tensor}}, string)"/> for a caller that holds only
    /// this rank's experts: <c>experts.w1</c>/<c>experts.w3</c> are [E_local, H, D] and <c>experts.w2</c> is
    /// [E_local, D, H], the experts from <see cref="MoeLayer.FirstExpert"/> on, so no rank builds the stacked tensors
    /// of all E experts. The other tensors are whole, as in <c>Load</c>.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing or mis-shaped.</exception>
    internal static void LoadLocalExperts(
        MoeLayer layer,
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        string sourceName = "<memory>"
    ) => Load(layer, tensors, sourceName, localExperts: true);

    private static void Load(
        MoeLayer layer,
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        string sourceName,
        bool localExperts
    )
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(sourceName);
        var file = new TensorLookup(tensors, sourceName);
        MoeLayerArgs a = layer.Args;
        int e = a.NumExperts,
            d = a.Dim,
            h = a.Hidden;
        var plan = new List<Copy> { Copy.Whole(Require(file, GateWeight, e, d), layer.Router.GateWeight) };
        if (localExperts)
        {
            int local = layer.Experts.NumLocalExperts;
            plan.Add(Copy.Whole(Require(file, ExpertsW1, local, h, d), layer.Experts.W1));
            plan.Add(Copy.Whole(Require(file, ExpertsW2, local, d, h), layer.Experts.W2));
            plan.Add(Copy.Whole(Require(file, ExpertsW3, local, h, d), layer.Experts.W3));
        }
        else
        {
            int first = layer.FirstExpert;
            plan.Add(Copy.FromSlice(Require(file, ExpertsW1, e, h, d), first * h * d, layer.Experts.W1));
            plan.Add(Copy.FromSlice(Require(file, ExpertsW2, e, d, h), first * d * h, layer.Experts.W2));
            plan.Add(Copy.FromSlice(Require(file, ExpertsW3, e, h, d), first * h * d, layer.Experts.W3));
        }
        if (layer.Shared is { } shared)
        {
            int hs = a.SharedHidden;
            plan.Add(Copy.Whole(Require(file, SharedW1, hs, d), shared.W1));
            plan.Add(Copy.Whole(Require(file, SharedW2, d, hs), shared.W2));
            plan.Add(Copy.Whole(Require(file, SharedW3, hs, d), shared.W3));
        }
        if (layer.SharedGate is { } sharedGate)
            plan.Add(Copy.Whole(Require(file, SharedGate, 1, d), sharedGate));
        if (layer.ExpertBias is { } bias && file.Contains(ExpertBias))
            plan.Add(Copy.Whole(Require(file, ExpertBias, e), bias));
        layer.Experts.MarkWeightsChanged(); // the padded experts' bfloat16 copies are stale (even if a copy fails)
        Apply(plan);
    }

    /// <summary>
    /// Collective over the layer's world: the golden-named weights with all E experts (gathered from their
    /// owners; weights only, never tokens), in a fixed order. Each stacked expert tensor is one array, so this is for
    /// layers whose <c>E × H × D</c> fits one (it throws <see cref="InvalidOperationException"/> before gathering
    /// otherwise); <see cref="Save"/> streams and has no such limit.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, Tensor>> StateDict(MoeLayer layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        MoeLayerArgs a = layer.Args;
        var state = new List<KeyValuePair<string, Tensor>>
        {
            new(GateWeight, HostCopy(layer.Router.GateWeight)),
            new(ExpertsW1, GatherExperts(layer, layer.Experts.W1, a.Hidden, a.Dim)),
            new(ExpertsW2, GatherExperts(layer, layer.Experts.W2, a.Dim, a.Hidden)),
            new(ExpertsW3, GatherExperts(layer, layer.Experts.W3, a.Hidden, a.Dim)),
        };
        if (layer.ExpertBias is { } bias)
            state.Insert(1, new(ExpertBias, HostCopy(bias)));
        if (layer.Shared is { } shared)
        {
            state.Add(new(SharedW1, HostCopy(shared.W1)));
            state.Add(new(SharedW2, HostCopy(shared.W2)));
            state.Add(new(SharedW3, HostCopy(shared.W3)));
        }
        if (layer.SharedGate is { } sharedGate)
            state.Add(new(SharedGate, HostCopy(sharedGate)));
        return state;
    }

    /// <summary>
    /// Collective: writes the golden-named weights (the tensors of <see cref="StateDict"/>) to <paramref name="path"/>
    /// from world rank 0 only (atomically), streaming: the experts travel one expert slab at a time (each rank's
    /// j-th local expert, in row blocks of at most <see cref="SaveBlockBytes"/> over all ranks) and are written at
    /// their offsets, so no rank ever holds more than its own experts and one block, and the stacked tensors may be
    /// larger than any array.
    /// </summary>
    public static void Save(MoeLayer layer, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        SaveInBlocks(layer, path, metadata, SaveBlockBytes);

    /// <summary><see cref="Save(MoeLayer, string, IReadOnlyDictionary{string, string}?)"/> with another gather block
    /// size (tests use tiny ones).</summary>
    internal static void SaveInBlocks(
        MoeLayer layer,
        string path,
        IReadOnlyDictionary<string, string>? metadata,
        int blockBytes
    )
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentException.ThrowIfNullOrEmpty(path);
        using SafetensorsStreamWriter? writer =
            layer.Dispatcher.EpRank == 0 ? new SafetensorsStreamWriter(path, SaveLayout(layer), metadata) : null;
        WriteSaved(layer, writer, blockBytes);
        writer?.Commit();
    }

    /// <summary>The tensors <see cref="Save"/> writes, in file order: name, dtype and shape with all E
    /// experts.</summary>
    internal static List<(string Name, DType DType, long[] Shape)> SaveLayout(MoeLayer layer)
    {
        MoeLayerArgs a = layer.Args;
        long e = a.NumExperts,
            d = a.Dim,
            h = a.Hidden,
            hs = a.SharedHidden;
        var layout = new List<(string Name, DType DType, long[] Shape)> { (GateWeight, DType.Float32, [e, d]) };
        if (layer.ExpertBias is not null)
            layout.Add((ExpertBias, DType.Float32, [e]));
        layout.Add((ExpertsW1, DType.Float32, [e, h, d]));
        layout.Add((ExpertsW2, DType.Float32, [e, d, h]));
        layout.Add((ExpertsW3, DType.Float32, [e, h, d]));
        if (layer.Shared is not null)
        {
            layout.Add((SharedW1, DType.Float32, [hs, d]));
            layout.Add((SharedW2, DType.Float32, [d, hs]));
            layout.Add((SharedW3, DType.Float32, [hs, d]));
        }
        if (layer.SharedGate is not null)
            layout.Add((SharedGate, DType.Float32, [1, d]));
        return layout;
    }

    /// <summary>
    /// Collective: the tensors of <see cref="SaveLayout"/> into <paramref name="writer"/>, which world rank 0 passes
    /// (the other ranks pass null and take part in the experts' gathers). Does not commit.
    /// </summary>
    internal static void WriteSaved(MoeLayer layer, SafetensorsStreamWriter? writer, int blockBytes)
    {
        MoeLayerArgs a = layer.Args;
        var replicated = new List<(string Name, Tensor Value)> { (GateWeight, layer.Router.GateWeight) };
        if (layer.ExpertBias is { } bias)
            replicated.Add((ExpertBias, bias));
        if (layer.Shared is { } shared)
            replicated.AddRange([(SharedW1, shared.W1), (SharedW2, shared.W2), (SharedW3, shared.W3)]);
        if (layer.SharedGate is { } gate)
            replicated.Add((SharedGate, gate));
        foreach (var (name, value) in replicated)
            writer?.Write(name, 0, HostCopy(value).AsSpan<float>());
        StreamExpertStack(layer, writer, ExpertsW1, layer.Experts.W1, a.Hidden, a.Dim, blockBytes);
        StreamExpertStack(layer, writer, ExpertsW2, layer.Experts.W2, a.Dim, a.Hidden, blockBytes);
        StreamExpertStack(layer, writer, ExpertsW3, layer.Experts.W3, a.Hidden, a.Dim, blockBytes);
    }

    /// <summary>Largest block of expert rows (over all ranks together) that <see cref="Save"/> gathers at
    /// once.</summary>
    public const int SaveBlockBytes = 64 << 20;

    /// <summary>
    /// Collective: streams a tensor stacked over the experts (a weight, or a per-expert state of the same shape such
    /// as an optimizer moment; this rank's [E_local, rows, columns] in <paramref name="local"/>) to rank 0's writer:
    /// for each local expert j and row block, every rank's slab is all-gathered (rank s holds global expert s·El + j)
    /// and rank 0 writes each at its offset.
    /// </summary>
    internal static void StreamExpertStack(
        MoeLayer layer,
        SafetensorsStreamWriter? writer,
        string name,
        Tensor local,
        int rows,
        int columns,
        int blockBytes
    )
    {
        int ranks = layer.World?.Size ?? 1,
            perRank = layer.Experts.NumLocalExperts;
        int blockRows = (int)Math.Clamp(blockBytes / ((long)ranks * columns * sizeof(float)), 1, rows);
        var slab = new float[blockRows * columns];
        var gathered = ranks > 1 ? new float[ranks * slab.Length] : slab;
        for (int j = 0; j < perRank; j++)
        {
            for (int row = 0; row < rows; row += blockRows)
            {
                int count = Math.Min(blockRows, rows - row),
                    elements = count * columns;
                long first = ((long)j * rows + row) * columns;
                Span<float> mine = slab.AsSpan(0, elements);
                if (local.DeviceBuffer is { } device)
                    device.CopyToHost(first * sizeof(float), MemoryMarshal.AsBytes(mine));
                else
                    local.AsSpan<float>().Slice((int)first, elements).CopyTo(mine);
                if (ranks > 1)
                    layer.World!.AllGather<float>(mine, gathered.AsSpan(0, ranks * elements));
                if (writer is null)
                    continue;
                for (int s = 0; s < ranks; s++)
                {
                    long expert = (long)s * perRank + j;
                    writer.Write(name, (expert * rows + row) * columns, gathered.AsSpan(s * elements, elements));
                }
            }
        }
    }

    /// <summary>The Hugging Face name of each golden-named tensor of <paramref name="state"/> (the mapping in the class
    /// remarks).</summary>
    /// <param name="state">Golden-named tensors, e.g. from <see cref="StateDict"/>.</param>
    /// <param name="prefix">Prepended to every name, e.g. <c>model.layers.0.mlp.</c>.</param>
    public static IReadOnlyList<KeyValuePair<string, Tensor>> ToHuggingFace(
        IEnumerable<KeyValuePair<string, Tensor>> state,
        string prefix = ""
    )
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(prefix);
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, tensor) in state)
        {
            switch (name)
            {
                case GateWeight:
                    result.Add(new(prefix + "gate.weight", tensor));
                    break;
                case ExpertBias:
                    result.Add(new(prefix + "gate.e_score_correction_bias", tensor));
                    break;
                case ExpertsW1:
                    AddPerExpert(tensor, "gate_proj");
                    break;
                case ExpertsW2:
                    AddPerExpert(tensor, "down_proj");
                    break;
                case ExpertsW3:
                    AddPerExpert(tensor, "up_proj");
                    break;
                case SharedW1:
                    result.Add(new(prefix + "shared_expert.gate_proj.weight", tensor));
                    break;
                case SharedW2:
                    result.Add(new(prefix + "shared_expert.down_proj.weight", tensor));
                    break;
                case SharedW3:
                    result.Add(new(prefix + "shared_expert.up_proj.weight", tensor));
                    break;
                case SharedGate:
                    result.Add(new(prefix + "shared_expert_gate.weight", tensor));
                    break;
                default:
                    throw new ArgumentException($"'{name}' is not a MoE layer tensor name", nameof(state));
            }
        }
        return result;

        void AddPerExpert(Tensor stacked, string projection)
        {
            int rows = stacked.Dim(1),
                columns = stacked.Dim(2);
            for (int i = 0; i < stacked.Dim(0); i++)
            {
                var one = Tensor.Uninitialized(DType.Float32, rows, columns);
                stacked.Row<float>(i).CopyTo(one.AsSpan<float>());
                result.Add(
                    new(string.Create(CultureInfo.InvariantCulture, $"{prefix}experts.{i}.{projection}.weight"), one)
                );
            }
        }
    }

    /// <summary>Loads Hugging Face per-expert weights from a file; see
    /// <see cref="LoadHuggingFace(MoeLayer, SafetensorsContent, string)"/>.</summary>
    public static void LoadHuggingFace(MoeLayer layer, string path, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(layer);
        LoadHuggingFace(layer, SafetensorsFile.Read(path), prefix);
    }

    /// <summary>
    /// Loads Hugging Face per-expert weights (Qwen2-MoE/DeepSeek/Mixtral-style SwiGLU names, the mapping in
    /// the class remarks) under <paramref name="prefix"/>; a rank reads only its own experts. The expert
    /// bias is read when the layer balances load and <c>{prefix}gate.e_score_correction_bias</c> exists.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing or mis-shaped.</exception>
    public static void LoadHuggingFace(MoeLayer layer, SafetensorsContent file, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(prefix);
        LoadHuggingFace(layer, new TensorLookup(file, file.SourceName), prefix);
    }

    private static void LoadHuggingFace(MoeLayer layer, TensorLookup file, string prefix)
    {
        MoeLayerArgs a = layer.Args;
        int e = a.NumExperts,
            d = a.Dim,
            h = a.Hidden;
        var plan = new List<Copy> { Copy.Whole(Require(file, prefix + "gate.weight", e, d), layer.Router.GateWeight) };
        for (int j = 0; j < layer.Experts.NumLocalExperts; j++)
        {
            int i = layer.FirstExpert + j;
            string expert = string.Create(CultureInfo.InvariantCulture, $"{prefix}experts.{i}.");
            plan.Add(Copy.IntoSlice(Require(file, expert + "gate_proj.weight", h, d), layer.Experts.W1, j * h * d));
            plan.Add(Copy.IntoSlice(Require(file, expert + "down_proj.weight", d, h), layer.Experts.W2, j * d * h));
            plan.Add(Copy.IntoSlice(Require(file, expert + "up_proj.weight", h, d), layer.Experts.W3, j * h * d));
        }
        if (layer.Shared is { } shared)
        {
            int hs = a.SharedHidden;
            plan.Add(Copy.Whole(Require(file, prefix + "shared_expert.gate_proj.weight", hs, d), shared.W1));
            plan.Add(Copy.Whole(Require(file, prefix + "shared_expert.down_proj.weight", d, hs), shared.W2));
            plan.Add(Copy.Whole(Require(file, prefix + "shared_expert.up_proj.weight", hs, d), shared.W3));
        }
        if (layer.SharedGate is { } sharedGate)
        {
            plan.Add(Copy.Whole(Require(file, prefix + "shared_expert_gate.weight", 1, d), sharedGate));
        }
        string biasName = prefix + "gate.e_score_correction_bias";
        if (layer.ExpertBias is { } bias && file.Contains(biasName))
            plan.Add(Copy.Whole(Require(file, biasName, e), bias));
        Apply(plan);
    }

    /// <summary>The tensor as float32, checked against <paramref name="shape"/>.</summary>
    private static Tensor Require(TensorLookup file, string name, params int[] shape)
    {
        string expected = "[" + string.Join(", ", shape) + "]";
        if (!file.TryGet(name, out Tensor? tensor))
        {
            throw new InvalidDataException($"{file.SourceName}: missing tensor '{name}' (expected float32 {expected})");
        }
        if (!tensor.Shape.SequenceEqual(shape))
        {
            throw new InvalidDataException(
                $"{file.SourceName}: tensor '{name}' has shape {tensor.ShapeString} but "
                    + $"the layer expects {expected}"
            );
        }
        return tensor.DType switch
        {
            DType.Float32 => tensor,
            DType.BFloat16 => tensor.ToFloat32(),
            _ => throw new InvalidDataException(
                $"{file.SourceName}: tensor '{name}' is {tensor.DType}; expected F32 or BF16 {expected}"
            ),
        };
    }

    /// <summary>Runs the copies; only after every tensor passed its checks, so a failed load changes nothing.</summary>
    private static void Apply(List<Copy> plan)
    {
        foreach (Copy c in plan)
        {
            ReadOnlySpan<float> source = c.Source.AsSpan<float>().Slice(c.SourceOffset, c.Count);
            if (c.Target.DeviceBuffer is { } device)
                device.CopyFromHost(MemoryMarshal.AsBytes(source), (long)c.TargetOffset * sizeof(float));
            else
                source.CopyTo(c.Target.AsSpan<float>().Slice(c.TargetOffset, c.Count));
        }
    }

    /// <summary>One planned copy of <see cref="Count"/> elements.</summary>
    private sealed record Copy(Tensor Source, int SourceOffset, Tensor Target, int TargetOffset, int Count)
    {
        public static Copy Whole(Tensor source, Tensor target) => new(source, 0, target, 0, target.ElementCount);

        /// <summary>This rank's experts out of a stacked [E, …] tensor.</summary>
        public static Copy FromSlice(Tensor source, int offset, Tensor target) =>
            new(source, offset, target, 0, target.ElementCount);

        /// <summary>One expert's matrix into its place in the local stack.</summary>
        public static Copy IntoSlice(Tensor source, Tensor target, int offset) =>
            new(source, 0, target, offset, source.ElementCount);
    }

    /// <summary>A host copy of a weight on any device.</summary>
    private static Tensor HostCopy(Tensor t) => t.IsOnHost ? t.Clone() : t.ToHost();

    private static Tensor GatherExperts(MoeLayer layer, Tensor local, int rows, int columns)
    {
        int total = layer.Args.NumExperts;
        long elements = (long)total * rows * columns;
        if (elements > Array.MaxLength)
        {
            throw new InvalidOperationException(
                $"StateDict would gather {total} × {rows} × {columns} = {elements} elements into one tensor, more "
                    + "than an array holds; use Save, which streams"
            );
        }
        if (!local.IsOnHost)
            local = local.ToHost();
        var full = Tensor.Uninitialized(DType.Float32, total, rows, columns);
        if (layer.World is { Size: > 1 } world)
            world.AllGather<float>(local.AsSpan<float>(), full.AsSpan<float>());
        else
            local.AsSpan<float>().CopyTo(full.AsSpan<float>());
        return full;
    }

    /// <summary>Name → tensor with a source name for messages.</summary>
    private sealed class TensorLookup(IEnumerable<KeyValuePair<string, Tensor>> tensors, string sourceName)
    {
        private readonly Dictionary<string, Tensor> _byName = tensors.ToDictionary(
            kv => kv.Key,
            kv => kv.Value,
            StringComparer.Ordinal
        );

        public string SourceName { get; } = sourceName;

        public bool Contains(string name) => _byName.ContainsKey(name);

        public bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Tensor? tensor) =>
            _byName.TryGetValue(name, out tensor);
    }
}
