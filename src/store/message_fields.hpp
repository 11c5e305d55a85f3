// Values the store derives from a message at delivery or listing time.
// Trust: message content is untrusted bytes from the network; parsing here never fails.
#pragma once

#include <string>
#include <string_view>

namespace maild::store {

// The first Subject header of the content's header section, unfolded and trimmed; "" if none.
std::string header_subject(std::string_view content);

// hex SHA-256 of lowercase(mailbox address) + "\n" + content hash: the same on every node, forever.
std::string delivery_uidl(std::string_view mailbox_address, std::string_view content_hash_hex);

}  // namespace maild::store
