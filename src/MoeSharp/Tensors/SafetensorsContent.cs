using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace MoeSharp.Tensors;

/// <summary>
/// The contents of a safetensors file: named tensors in data-block order and the <c>__metadata__</c> map.
/// Enumerates as name/tensor pairs, so it can be handed straight back to <see cref="SafetensorsFile.Write"/>.
/// </summary>
public sealed class SafetensorsContent : IEnumerable<KeyValuePair<string, Tensor>>
{
    private readonly Dictionary<string, Tensor> _byName;
    private readonly string[] _names;

    internal SafetensorsContent(
        string sourceName,
        IReadOnlyList<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string> metadata
    )
    {
        SourceName = sourceName;
        _names = tensors.Select(t => t.Key).ToArray();
        _byName = new Dictionary<string, Tensor>(tensors, StringComparer.Ordinal);
        Metadata = metadata;
    }

    /// <summary>The file path, or the name given for a stream or buffer; used in error messages.</summary>
    public string SourceName { get; }

    /// <summary>The <c>__metadata__</c> map; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in data-block order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>Number of tensors.</summary>
    public int Count => _names.Length;

    /// <summary>The tensor called <paramref name="name"/>; same as <see cref="Get"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public Tensor this[string name] => Get(name);

    /// <summary>Whether a tensor called <paramref name="name"/> exists.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name; the message names it and the file.</exception>
    public Tensor Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out Tensor? tensor))
            return tensor;
        // Listing what the file does hold usually shows the typo at once; cap it for files with thousands of tensors.
        const int shown = 20;
        string available =
            _names.Length == 0
                ? "it has no tensors"
                : "it has "
                    + string.Join(", ", _names.Take(shown).Select(n => $"'{n}'"))
                    + (_names.Length > shown ? $" and {_names.Length - shown} more" : "");
        throw new KeyNotFoundException($"{SourceName}: no tensor '{name}'; {available}");
    }

    /// <summary>Looks a tensor up by name.</summary>
    public bool TryGet(string name, [NotNullWhen(true)] out Tensor? tensor)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _byName.TryGetValue(name, out tensor);
    }

    /// <summary>Name/tensor pairs in data-block order.</summary>
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator()
    {
        foreach (string name in _names)
            yield return new KeyValuePair<string, Tensor>(name, _byName[name]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
