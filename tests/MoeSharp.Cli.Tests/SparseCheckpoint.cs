using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// A Mixtral checkpoint of any size that costs no memory and almost no disk: its shard's header declares every tensor
/// of the layer as BF16 and the file is extended to the data's length without writing it (a sparse file), so the
/// header checks pass and only the layer's own allocations are left to refuse.
/// </summary>
internal static class SparseCheckpoint
{
    /// <summary>Writes <c>config.json</c> and <c>model.safetensors</c> for one MoE layer into
    /// <paramref name="folder"/>.</summary>
    public static void WriteMixtral(string folder, int dim, int hidden, int experts)
    {
        File.WriteAllText(
            Path.Combine(folder, "config.json"),
            JsonSerializer.Serialize(
                new Dictionary<string, object>
                {
                    ["model_type"] = "mixtral",
                    ["hidden_size"] = dim,
                    ["intermediate_size"] = hidden,
                    ["num_local_experts"] = experts,
                    ["num_experts_per_tok"] = 2,
                    ["num_hidden_layers"] = 1,
                }
            )
        );
        const string prefix = "model.layers.0.block_sparse_moe.";
        var tensors = new List<(string Name, long[] Shape)> { (prefix + "gate.weight", [experts, dim]) };
        for (int e = 0; e < experts; e++)
        {
            tensors.Add(($"{prefix}experts.{e}.w1.weight", [hidden, dim]));
            tensors.Add(($"{prefix}experts.{e}.w3.weight", [hidden, dim]));
            tensors.Add(($"{prefix}experts.{e}.w2.weight", [dim, hidden]));
        }
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape[0] * shape[1] * 2;
            header[name] = new
            {
                dtype = "BF16",
                shape,
                data_offsets = new[] { offset, offset + bytes },
            };
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using FileStream file = File.Create(Path.Combine(folder, "model.safetensors"));
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        file.Write(json);
        file.SetLength(file.Position + offset);
    }
}
